//! Normalise + match on the default flow over a realistic mix of messages,
//! and a whole engine step for the same mix.

use std::hint::black_box;

use chrono::{TimeZone, Utc};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use flowbot::engine::{Customer, Input, Session, step};
use flowbot::flow::compile;

fn mix() -> Vec<String> {
    let long = "Здравствуйте! Подскажите, пожалуйста, сколько будет стоить химчистка углового дивана и двух кресел, и можно ли в субботу утром? ".repeat(8);
    vec![
        "💰 Прайс".to_owned(),
        "💰\u{fe0f} Прайс".to_owned(),
        "прайс".to_owned(),
        "Мои бонусы".to_owned(),
        "🕐 Режим работы".to_owned(),
        "режим работы!".to_owned(),
        "/start".to_owned(),
        "/info@cleaning_bot".to_owned(),
        "Сколько стоит диван?".to_owned(),
        "Hello, do you clean carpets on Sunday?".to_owned(),
        "+7 999 123-45-67".to_owned(),
        long,
    ]
}

fn bench(c: &mut Criterion) {
    let source =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/flows/default.yaml"))
            .unwrap_or_default();
    let Ok(loaded) = compile::load(&source) else {
        panic!("the default flow must load");
    };
    let flow = loaded.flow;
    let messages = mix();
    let mut group = c.benchmark_group("default_flow");
    group.throughput(Throughput::Elements(messages.len() as u64));
    group.bench_function("normalise_and_match", |b| {
        b.iter(|| {
            for m in &messages {
                black_box(flow.find_button(black_box(m), false));
            }
        })
    });
    let customer = Customer {
        telegram_id: 1,
        first_name: "Анна".into(),
        last_name: None,
        username: None,
    };
    let mut session = Session::new(customer, "main");
    session.phone = flowbot::phone::Phone::parse("+79991234567").ok();
    let now = Utc
        .with_ymd_and_hms(2026, 11, 23, 9, 0, 0)
        .single()
        .unwrap_or_default();
    let inputs: Vec<Input> = messages.iter().map(|m| Input::text(m.clone())).collect();
    group.bench_function("engine_step", |b| {
        b.iter(|| {
            for input in &inputs {
                black_box(step(&flow, &session, black_box(input), now));
            }
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
