"""The flowbot default flow (flows/default.yaml) as an idiomatic aiogram 3 bot.

This is the Python side of the comparison in `benches/e2e.rs`
(`E2E_BOT=aiogram`): the same customer dialogue with the same reply texts
and keyboards, written the way an aiogram bot is usually written — routers,
magic filters, FSM states — so that its CPU time, latency and memory can be
compared with flowbot's on the same script.

Storage is the lightest aiogram has: `MemoryStorage` (the default FSM
storage) keeps each customer's state and data (phone, bonuses, held
messages) in the process, and messages for the CRM go to an in-memory list.
Nothing is written to disk, so nothing survives a restart; flowbot, for
comparison, commits every update and every reply to SQLite (with
`synchronous=FULL`) before acting on it.

Environment (the same names flowbot reads):
    TELEGRAM_BOT_TOKEN   the bot token
    TELEGRAM_API_URL     Bot API server, e.g. http://127.0.0.1:8081
                         (default: the real https://api.telegram.org)
    ADMIN_CHAT_IDS       admins' chats, comma-separated
    TELEGRAM_POLL_TIMEOUT_SECS  long-poll timeout (default 10)
    LOG_LEVEL            Python logging level (default WARNING)
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from aiogram import Bot, Dispatcher, F, Router
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.filters import Command, CommandStart, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.fsm.storage.memory import MemoryStorage
from aiogram.types import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
)

# ----- the business (flows/default.yaml: business) ------------------------------

BUSINESS = "Чистый дом"
TZ = ZoneInfo("Europe/Moscow")
WELCOME_BONUS = 300
WELCOME_DAYS = 30
# Weekday (Monday = 0) -> (opens, closes) in hours; Sunday closed.
HOURS = {0: (9, 20), 1: (9, 20), 2: (9, 20), 3: (9, 20), 4: (9, 20), 5: (10, 18)}
SCHEDULE = "пн–пт: 09:00–20:00\nсб: 10:00–18:00\nвс: выходной"
FORWARDED_EVERY = 30 * 60  # seconds: `{ reply: forwarded, at_most_every: 30m }`

# ----- texts (flows/default.yaml: texts) ----------------------------------------

GREETING = (
    "Здравствуйте, {first_name}! Я бот химчистки «{business}»: помогу оформить заказ, "
    "расскажу о ценах и бонусах, передам вопрос менеджеру."
)
ASK_PHONE = (
    "Чтобы мы могли связаться с вами и начислить бонусы, поделитесь, пожалуйста, номером "
    "телефона — кнопкой ниже или введите его вручную."
)
ASK_PHONE_FIRST = (
    "Сначала поделитесь, пожалуйста, номером телефона — так менеджер сможет вам ответить. "
    "Ваше сообщение я сохранил и передам сразу после этого."
)
ASK_PHONE_MANUAL = "Напишите номер телефона, например: +7 999 123-45-67"
PHONE_INVALID = (
    "Не получилось распознать номер. Напишите его полностью, например: +7 999 123-45-67 "
    "или 8 999 123 45 67."
)
CONTACT_NOT_OWN = (
    "Это не ваш контакт. Нажмите кнопку «📱 Поделиться номером», чтобы отправить свой номер, "
    "или введите его вручную."
)
PHONE_SAVED = "Спасибо, номер {phone} сохранён!"
BONUS_GRANTED = (
    "🎁 Вам начислено {welcome_bonus} приветственных бонусов. Они действуют {welcome_days} дней."
)
BONUS_BALANCE = (
    "На вашем счёте {bonus} бонусов. Приветственные бонусы действуют до {bonus_expires}. "
    "Бонусами можно оплатить до 30% заказа."
)
BONUS_EMPTY = "Пока на вашем счёте нет бонусов. Сделайте первый заказ — и они появятся!"
ASK_ORDER = (
    "Опишите, что нужно почистить (например: диван, 2 кресла, ковёр 2×3 м), и удобные дату "
    "и время. Одним сообщением."
)
ORDER_THANKS = "Спасибо! Заказ принят, менеджер свяжется с вами, чтобы подтвердить время."
ASK_QUESTION = "Напишите ваш вопрос одним сообщением — я передам его администратору."
QUESTION_THANKS = "Спасибо! Вопрос передан, ответим как можно скорее."
ASK_MEDIA = (
    "Пришлите фото или видео того, что нужно почистить, — так мы точнее оценим работу. "
    "Когда закончите, нажмите «Закрыть»."
)
MEDIA_RECEIVED = "Получил, спасибо! Можно прислать ещё или нажать «Закрыть»."
MEDIA_REMINDER = "Сейчас я жду фото или видео. Когда закончите, нажмите «Закрыть»."
MEDIA_CLOSED = "Готово, файлы переданы. Менеджер посмотрит их и ответит."
MEDIA_HINT = "Чтобы отправить фото или видео, нажмите «Отправить фото/видео» в меню."
PRICE = (
    "💰 Цены на основные услуги:\n"
    "• Химчистка дивана — от 2 500 ₽\n"
    "• Химчистка кресла — от 1 200 ₽\n"
    "• Ковёр — от 300 ₽ за м²\n"
    "• Матрас — от 1 800 ₽\n"
    "• Выезд по городу — бесплатно при заказе от 3 000 ₽\n"
    "Точную стоимость менеджер назовёт после фото."
)
HOURS_OPEN = "🕐 Сейчас мы работаем, закрываемся {closes_at}.\n\nЧасы работы:\n{schedule}"
HOURS_CLOSED = "🕐 Сейчас мы закрыты, откроемся {opens_at}.\n\nЧасы работы:\n{schedule}"
INFO = (
    "Я умею:\n"
    "• показать ваши бонусы — «Мои бонусы»;\n"
    "• принять заказ — «Сделать заказ»;\n"
    "• передать вопрос — «Задать вопрос»;\n"
    "• принять фото или видео — «Отправить фото/видео»;\n"
    "• рассказать о ценах и часах работы.\n"
    "А любое другое сообщение я передам менеджеру, он ответит прямо здесь."
)
CANCELLED = "Хорошо, отменил. Вы в главном меню."
FORWARDED = "Сообщение передано менеджеру. Ответим в ближайшее время."
UNSUPPORTED = "Такие сообщения я пока не понимаю. Напишите текстом, пожалуйста."
UNKNOWN_COMMAND = "Такой команды нет. Напишите /info, чтобы узнать, что я умею."
ORDER_NOTICE = "🧾 Новый заказ\nКлиент: {name} ({username}, id {user_id})\nТелефон: {phone}\n\n{text}"
QUESTION_NOTICE = "❓ Вопрос\nКлиент: {name} ({username}, id {user_id})\nТелефон: {phone}\n\n{text}"
MEDIA_CAPTION = "📎 {media_kind} от {name} ({username}, id {user_id}), тел. {phone}\n{text}"

# ----- keyboards (flows/default.yaml: keyboards) --------------------------------


def reply_keyboard(rows: list[list[KeyboardButton]]) -> ReplyKeyboardMarkup:
    # As flowbot sends them: resized and persistent.
    return ReplyKeyboardMarkup(keyboard=rows, resize_keyboard=True, is_persistent=True)


MAIN_KB = reply_keyboard(
    [
        [KeyboardButton(text="Мои бонусы"), KeyboardButton(text="Сделать заказ")],
        [KeyboardButton(text="Задать вопрос"), KeyboardButton(text="Отправить фото/видео")],
        [KeyboardButton(text="💰 Прайс"), KeyboardButton(text="🕐 Режим работы")],
    ]
)
PHONE_KB = reply_keyboard(
    [
        [KeyboardButton(text="📱 Поделиться номером", request_contact=True)],
        [KeyboardButton(text="Ввести номер вручную")],
    ]
)
CANCEL_KB = reply_keyboard([[KeyboardButton(text="Отмена")]])
MEDIA_KB = reply_keyboard([[KeyboardButton(text="Закрыть")]])
SITE_KB = InlineKeyboardMarkup(
    inline_keyboard=[
        [InlineKeyboardButton(text="Полный прайс на сайте", url="https://example.com/price")]
    ]
)

# ----- state --------------------------------------------------------------------


class Flow(StatesGroup):
    main = State()
    waiting_phone_manual = State()
    waiting_order = State()
    waiting_question = State()
    waiting_media = State()


ADMIN_CHATS: list[int] = []
# Messages for the managers in the CRM (flowbot's outbox rows with destination
# `crm`): a bridge would deliver them. Kept in memory here.
CRM_OUTBOX: list[dict] = []

router = Router(name="customers")

# ----- helpers ------------------------------------------------------------------

PHONE_SEPARATORS = re.compile(r"[\s().\-\u2010-\u2015]")


def parse_phone(text: str) -> str | None:
    """A Russian number as +7XXXXXXXXXX (the rules of flowbot's src/phone.rs)."""
    text = text.strip()
    plus = text.startswith("+")
    digits = PHONE_SEPARATORS.sub("", text[1:] if plus else text)
    if not digits.isascii() or not digits.isdigit():
        return None
    if len(digits) == 11 and (digits[0] == "7" or (not plus and digits[0] == "8")):
        return "+7" + digits[1:]
    if not plus and len(digits) == 10 and digits[0] in "3489":
        return "+7" + digits
    return None


def looks_like_phone(text: str) -> bool:
    body = text.strip().removeprefix("+")
    n = sum(c.isascii() and c.isdigit() for c in body)
    return 10 <= n <= 11 and PHONE_SEPARATORS.sub("", body).isdigit()


def bonus_balance(data: dict) -> tuple[int, float | None]:
    """Active bonuses and the earliest expiry of an active grant."""
    now = time.time()
    active = [(d, exp) for d, exp in data.get("bonuses", ()) if exp is None or exp > now]
    balance = max(0, sum(d for d, _ in active))
    expiries = [exp for d, exp in active if d > 0 and exp is not None]
    return balance, (min(expiries) if expiries else None)


def customer_fields(message: Message, data: dict) -> dict:
    user = message.from_user
    return {
        "name": user.full_name,
        "username": f"@{user.username}" if user.username else "—",
        "user_id": user.id,
        "phone": data.get("phone") or "—",
    }


async def notify_admins(message: Message, text: str) -> None:
    for chat in ADMIN_CHATS:
        await message.bot.send_message(chat, text)


def to_crm(message: Message, text: str) -> None:
    CRM_OUTBOX.append({"user_id": message.from_user.id, "text": text, "at": time.time()})


async def phone_saved(message: Message, state: FSMContext, phone: str) -> None:
    """The `phone_saved` scenario: save, thank, welcome bonus, release held messages."""
    data = await state.get_data()
    bonuses = list(data.get("bonuses", ()))
    granted = data.get("welcome_granted", False)
    if not granted:
        bonuses.append((WELCOME_BONUS, time.time() + WELCOME_DAYS * 86400))
    held = data.get("held", [])
    await state.set_state(Flow.main)
    await state.update_data(phone=phone, bonuses=bonuses, welcome_granted=True, held=[])
    await message.answer(PHONE_SAVED.format(phone=phone), reply_markup=MAIN_KB)
    if not granted:
        await message.answer(
            BONUS_GRANTED.format(welcome_bonus=WELCOME_BONUS, welcome_days=WELCOME_DAYS)
        )
    for text in held:
        to_crm(message, text)


async def require_phone(message: Message, state: FSMContext) -> dict | None:
    """The `require_phone` scenario: the customer's data, or None after asking for the phone."""
    data = await state.get_data()
    if data.get("phone"):
        return data
    await message.answer(ASK_PHONE, reply_markup=PHONE_KB)
    return None


def describe(moment: datetime, now: datetime) -> str:
    if moment.date() == now.date():
        return f"сегодня в {moment:%H:%M}"
    if moment.date() == (now + timedelta(days=1)).date():
        return f"завтра в {moment:%H:%M}"
    return f"{moment:%d.%m} в {moment:%H:%M}"


def next_change(now: datetime) -> tuple[bool, datetime]:
    """Whether the business is open now, and when that changes."""
    hours = HOURS.get(now.weekday())
    if hours and hours[0] <= now.hour < hours[1]:
        return True, now.replace(hour=hours[1], minute=0, second=0, microsecond=0)
    day = now
    for _ in range(8):
        hours = HOURS.get(day.weekday())
        if hours:
            opens = day.replace(hour=hours[0], minute=0, second=0, microsecond=0)
            if opens > now:
                return False, opens
        day = (day + timedelta(days=1)).replace(hour=0, minute=0)
    return False, now


# ----- anytime: /start, /cancel, «Отмена» -----------------------------------------


@router.message(CommandStart())
async def start(message: Message, state: FSMContext) -> None:
    user = message.from_user
    # `register`: the customer's record (MemoryStorage data).
    await state.set_state(Flow.main)
    await state.update_data(first_name=user.first_name, username=user.username)
    data = await state.get_data()
    greeting = GREETING.format(first_name=user.first_name, business=BUSINESS)
    if data.get("phone"):
        await message.answer(greeting, reply_markup=MAIN_KB)
    else:
        await message.answer(greeting)
        await message.answer(ASK_PHONE, reply_markup=PHONE_KB)


@router.message(Command("cancel"))
@router.message(F.text == "Отмена")
async def cancel(message: Message, state: FSMContext) -> None:
    await state.set_state(Flow.main)
    await message.answer(CANCELLED, reply_markup=MAIN_KB)


# ----- steps that wait for something ---------------------------------------------


@router.message(Flow.waiting_phone_manual, F.contact)
@router.message(Flow.waiting_phone_manual, F.text)
async def manual_phone(message: Message, state: FSMContext) -> None:
    if message.contact:
        if message.contact.user_id != message.from_user.id:
            await message.answer(CONTACT_NOT_OWN)
            return
        raw = message.contact.phone_number
    else:
        raw = message.text
    phone = parse_phone(raw)
    if phone is None:
        await message.answer(PHONE_INVALID)
        return
    await phone_saved(message, state, phone)


@router.message(Flow.waiting_phone_manual)
async def manual_phone_other(message: Message) -> None:
    await message.answer(ASK_PHONE_MANUAL)


@router.message(Flow.waiting_order, F.text)
async def order(message: Message, state: FSMContext) -> None:
    data = await state.get_data()
    await notify_admins(message, ORDER_NOTICE.format(text=message.text, **customer_fields(message, data)))
    await message.answer(ORDER_THANKS, reply_markup=MAIN_KB)
    await state.set_state(Flow.main)


@router.message(Flow.waiting_order)
async def order_other(message: Message) -> None:
    await message.answer(ASK_ORDER)


@router.message(Flow.waiting_question, F.text)
async def question(message: Message, state: FSMContext) -> None:
    data = await state.get_data()
    await notify_admins(
        message, QUESTION_NOTICE.format(text=message.text, **customer_fields(message, data))
    )
    await message.answer(QUESTION_THANKS, reply_markup=MAIN_KB)
    await state.set_state(Flow.main)


@router.message(Flow.waiting_question)
async def question_other(message: Message) -> None:
    await message.answer(ASK_QUESTION)


@router.message(Flow.waiting_media, F.text == "Закрыть")
async def media_close(message: Message, state: FSMContext) -> None:
    await message.answer(MEDIA_CLOSED, reply_markup=MAIN_KB)
    await state.set_state(Flow.main)


@router.message(Flow.waiting_media, F.photo | F.video | F.document)
async def media(message: Message, state: FSMContext) -> None:
    data = await state.get_data()
    kind = "Фото" if message.photo else "Видео" if message.video else "Документ"
    caption = MEDIA_CAPTION.format(
        media_kind=kind, text=message.caption or "", **customer_fields(message, data)
    )
    for chat in ADMIN_CHATS:
        await message.copy_to(chat, caption=caption)
    await message.answer(MEDIA_RECEIVED)


@router.message(Flow.waiting_media)
async def media_other(message: Message) -> None:
    await message.answer(MEDIA_REMINDER)


# ----- the main menu ---------------------------------------------------------------


@router.message(F.contact)
async def contact(message: Message, state: FSMContext) -> None:
    if message.contact.user_id != message.from_user.id:
        await message.answer(CONTACT_NOT_OWN)
        return
    phone = parse_phone(message.contact.phone_number)
    if phone is None:
        await message.answer(PHONE_INVALID)
        return
    await phone_saved(message, state, phone)


@router.message(F.text == "Мои бонусы")
async def bonuses(message: Message, state: FSMContext) -> None:
    data = await require_phone(message, state)
    if data is None:
        return
    balance, expires = bonus_balance(data)
    if balance > 0:
        until = datetime.fromtimestamp(expires, TZ).strftime("%d.%m.%Y") if expires else "—"
        await message.answer(
            BONUS_BALANCE.format(bonus=balance, bonus_expires=until), reply_markup=MAIN_KB
        )
    else:
        await message.answer(BONUS_EMPTY, reply_markup=MAIN_KB)


@router.message(F.text == "Сделать заказ")
async def ask_order(message: Message, state: FSMContext) -> None:
    if await require_phone(message, state) is None:
        return
    await message.answer(ASK_ORDER, reply_markup=CANCEL_KB)
    await state.set_state(Flow.waiting_order)


@router.message(F.text == "Задать вопрос")
async def ask_question(message: Message, state: FSMContext) -> None:
    if await require_phone(message, state) is None:
        return
    await message.answer(ASK_QUESTION, reply_markup=CANCEL_KB)
    await state.set_state(Flow.waiting_question)


@router.message(F.text == "Отправить фото/видео")
async def ask_media(message: Message, state: FSMContext) -> None:
    if await require_phone(message, state) is None:
        return
    await message.answer(ASK_MEDIA, reply_markup=MEDIA_KB)
    await state.set_state(Flow.waiting_media)


@router.message(F.text == "💰 Прайс")
async def price(message: Message) -> None:
    await message.answer(PRICE, reply_markup=SITE_KB)


@router.message(F.text == "🕐 Режим работы")
async def hours(message: Message) -> None:
    now = datetime.now(TZ)
    open_now, change = next_change(now)
    if open_now:
        text = HOURS_OPEN.format(closes_at=describe(change, now), schedule=SCHEDULE)
    else:
        text = HOURS_CLOSED.format(opens_at=describe(change, now), schedule=SCHEDULE)
    await message.answer(text)


@router.message(F.text == "Ввести номер вручную")
async def enter_phone(message: Message, state: FSMContext) -> None:
    await message.answer(ASK_PHONE_MANUAL, reply_markup=CANCEL_KB)
    await state.set_state(Flow.waiting_phone_manual)


@router.message(Command("info"))
async def info(message: Message) -> None:
    await message.answer(INFO, reply_markup=MAIN_KB)


@router.message(F.text.startswith("/"))
async def unknown_command(message: Message) -> None:
    await message.answer(UNKNOWN_COMMAND)


@router.message(F.photo | F.video | F.document)
async def media_in_menu(message: Message) -> None:
    await message.answer(MEDIA_HINT)


# ----- everything else: to the manager --------------------------------------------


@router.message(F.text)
async def free_text(message: Message, state: FSMContext) -> None:
    data = await state.get_data()
    if not data.get("phone"):
        if looks_like_phone(message.text):
            phone = parse_phone(message.text)
            if phone is None:
                await message.answer(PHONE_INVALID)
            else:
                await phone_saved(message, state, phone)
            return
        # `hold`: kept until the phone arrives.
        await state.update_data(held=[*data.get("held", ()), message.text])
        await message.answer(ASK_PHONE_FIRST, reply_markup=PHONE_KB)
        return
    to_crm(message, message.text)
    now = time.time()
    if now - data.get("forwarded_at", 0.0) >= FORWARDED_EVERY:
        await state.update_data(forwarded_at=now)
        await message.answer(FORWARDED)


@router.message()
async def unsupported(message: Message) -> None:
    await message.answer(UNSUPPORTED)


# ----- start-up ---------------------------------------------------------------------


async def main() -> None:
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "WARNING").upper())
    ADMIN_CHATS.extend(
        int(part) for part in os.environ.get("ADMIN_CHAT_IDS", "").split(",") if part.strip()
    )
    api_url = os.environ.get("TELEGRAM_API_URL")
    session = AiohttpSession(api=TelegramAPIServer.from_base(api_url)) if api_url else None
    bot = Bot(token=os.environ["TELEGRAM_BOT_TOKEN"], session=session)
    dp = Dispatcher(storage=MemoryStorage())
    dp.include_router(router)
    poll_timeout = int(os.environ.get("TELEGRAM_POLL_TIMEOUT_SECS", "10"))
    await dp.start_polling(bot, polling_timeout=poll_timeout)


if __name__ == "__main__":
    asyncio.run(main())
