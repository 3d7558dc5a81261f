//! A YAML document as a tree of located nodes, and a serde `Deserializer` over it.
//!
//! The flow is read in two steps: serde-saphyr parses the text into [`Node`]s
//! (every node knows its line and column), then the raw flow types are
//! deserialized from that tree by [`NodeDe`]. Reading from our own tree lets
//! us speak Russian in type errors, point at the exact node, and keep going
//! after a broken part ([`Lenient`]) so that all problems are reported at once.

use std::cell::RefCell;
use std::fmt;

use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, IntoDeserializer, MapAccess, SeqAccess,
    VariantAccess, Visitor,
};
use serde::{Deserialize, forward_to_deserialize_any};

/// A position in the flow file, 1-based. `line == 0` means "unknown".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Pos {
    pub line: u32,
    pub column: u32,
}

impl Pos {
    pub const UNKNOWN: Pos = Pos { line: 0, column: 0 };

    pub fn is_known(self) -> bool {
        self.line > 0
    }
}

/// One YAML value with where it stood.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub pos: Pos,
    pub kind: NodeKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum NodeKind {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    /// Pairs in file order; duplicate keys are kept so the validator can name them.
    Map(Vec<(Node, Node)>),
}

impl Node {
    /// The node's scalar value as text, as a string-typed field would read it.
    pub fn as_text(&self) -> Option<String> {
        match &self.kind {
            NodeKind::Str(s) => Some(s.clone()),
            NodeKind::Int(i) => Some(i.to_string()),
            NodeKind::Float(f) => Some(f.to_string()),
            NodeKind::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }

    fn unexpected(&self) -> de::Unexpected<'_> {
        match &self.kind {
            NodeKind::Null => de::Unexpected::Unit,
            NodeKind::Bool(b) => de::Unexpected::Bool(*b),
            NodeKind::Int(i) => de::Unexpected::Signed(*i),
            NodeKind::Float(f) => de::Unexpected::Float(*f),
            NodeKind::Str(s) => de::Unexpected::Str(s),
            NodeKind::Seq(_) => de::Unexpected::Seq,
            NodeKind::Map(_) => de::Unexpected::Map,
        }
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let spanned = serde_saphyr::Spanned::<NodeKind>::deserialize(d)?;
        let loc = spanned.referenced;
        Ok(Node {
            pos: Pos {
                line: u32::try_from(loc.line()).unwrap_or(u32::MAX),
                column: u32::try_from(loc.column()).unwrap_or(u32::MAX),
            },
            kind: spanned.value,
        })
    }
}

impl<'de> Deserialize<'de> for NodeKind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(KindVisitor)
    }
}

struct KindVisitor;

impl<'de> Visitor<'de> for KindVisitor {
    type Value = NodeKind;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<NodeKind, E> {
        Ok(NodeKind::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<NodeKind, E> {
        Ok(NodeKind::Int(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<NodeKind, E> {
        Ok(i64::try_from(v).map_or(NodeKind::Float(v as f64), NodeKind::Int))
    }
    fn visit_f64<E>(self, v: f64) -> Result<NodeKind, E> {
        Ok(NodeKind::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<NodeKind, E> {
        Ok(NodeKind::Str(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<NodeKind, E> {
        Ok(NodeKind::Str(v))
    }
    fn visit_unit<E>(self) -> Result<NodeKind, E> {
        Ok(NodeKind::Null)
    }
    fn visit_none<E>(self) -> Result<NodeKind, E> {
        Ok(NodeKind::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<NodeKind, D::Error> {
        NodeKind::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<NodeKind, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Node>()? {
            items.push(item);
        }
        Ok(NodeKind::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<NodeKind, A::Error> {
        let mut pairs = Vec::new();
        while let Some(key) = map.next_key::<Node>()? {
            let value = map.next_value::<Node>()?;
            pairs.push((key, value));
        }
        Ok(NodeKind::Map(pairs))
    }
}

/// A type error found while reading the tree, in Russian, with its place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeError {
    pub pos: Pos,
    pub message: String,
}

impl DeError {
    fn at(mut self, pos: Pos) -> Self {
        if !self.pos.is_known() {
            self.pos = pos;
        }
        self
    }
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError {
            pos: Pos::UNKNOWN,
            message: msg.to_string(),
        }
    }
    fn invalid_type(unexp: de::Unexpected, exp: &dyn de::Expected) -> Self {
        Self::custom(format!(
            "здесь нужно {}, а написано {}",
            expected_ru(exp),
            unexpected_ru(&unexp)
        ))
    }
    fn invalid_value(unexp: de::Unexpected, exp: &dyn de::Expected) -> Self {
        Self::custom(format!(
            "недопустимое значение {}: нужно {}",
            unexpected_ru(&unexp),
            expected_ru(exp)
        ))
    }
    fn invalid_length(len: usize, exp: &dyn de::Expected) -> Self {
        Self::custom(format!(
            "неверное число элементов ({len}): нужно {}",
            expected_ru(exp)
        ))
    }
    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        Self::custom(format!(
            "неизвестное слово «{variant}»{} Можно: {}",
            super::suggest::hint_sentence(variant, expected.iter().copied()),
            list_ru(expected)
        ))
    }
    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        Self::custom(format!(
            "неизвестное поле «{field}»{} Здесь можно: {}",
            super::suggest::hint_sentence(field, expected.iter().copied()),
            list_ru(expected)
        ))
    }
    fn missing_field(field: &'static str) -> Self {
        Self::custom(format!("не хватает поля «{field}»"))
    }
    fn duplicate_field(field: &'static str) -> Self {
        Self::custom(format!("поле «{field}» указано дважды"))
    }
}

fn list_ru(items: &[&str]) -> String {
    items
        .iter()
        .map(|s| format!("«{s}»"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn unexpected_ru(u: &de::Unexpected) -> String {
    match u {
        de::Unexpected::Bool(b) => format!("логическое значение {b}"),
        de::Unexpected::Unsigned(n) => format!("число {n}"),
        de::Unexpected::Signed(n) => format!("число {n}"),
        de::Unexpected::Float(n) => format!("число {n}"),
        de::Unexpected::Char(c) => format!("символ «{c}»"),
        de::Unexpected::Str(s) => format!("текст «{s}»"),
        de::Unexpected::Unit | de::Unexpected::Option => "пустое значение".to_owned(),
        de::Unexpected::Seq => "список".to_owned(),
        de::Unexpected::Map => "набор полей".to_owned(),
        other => other.to_string(),
    }
}

/// Serde's English "expected" phrases, in the words a flow editor knows.
fn expected_ru(exp: &dyn de::Expected) -> String {
    let text = exp.to_string();
    let known = [
        ("a string", "текст"),
        ("a borrowed string", "текст"),
        ("a boolean", "true или false"),
        ("a sequence", "список"),
        ("a map", "набор полей"),
        ("u8", "целое число"),
        ("u16", "целое число"),
        ("u32", "целое число"),
        ("u64", "целое число"),
        ("i32", "целое число"),
        ("i64", "целое число"),
        ("usize", "целое число"),
        ("f64", "число"),
    ];
    if let Some((_, ru)) = known.iter().find(|(en, _)| *en == text) {
        return (*ru).to_owned();
    }
    if text.starts_with("struct ") || text.starts_with("a map") {
        return "набор полей".to_owned();
    }
    if let Some(rest) = text.strip_prefix("an array of length ") {
        return format!("список из {rest}");
    }
    if text.starts_with("a sequence") || text.starts_with("tuple") {
        return "список".to_owned();
    }
    text
}

/// Where [`Lenient`] values put the errors they swallowed.
pub type Sink = RefCell<Vec<DeError>>;

/// Magic newtype names the deserializer recognises.
const LOCATED: &str = "$flowbot::Located";
const LENIENT: &str = "$flowbot::Lenient";

/// Deserializes raw flow types from a [`Node`] tree.
#[derive(Clone, Copy)]
pub struct NodeDe<'a> {
    node: &'a Node,
    sink: &'a Sink,
}

impl<'a> NodeDe<'a> {
    pub fn new(node: &'a Node, sink: &'a Sink) -> Self {
        NodeDe { node, sink }
    }

    fn child(&self, node: &'a Node) -> Self {
        NodeDe {
            node,
            sink: self.sink,
        }
    }
}

impl<'de> Deserializer<'de> for NodeDe<'de> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        let pos = self.node.pos;
        let result = match &self.node.kind {
            NodeKind::Null => v.visit_unit(),
            NodeKind::Bool(b) => v.visit_bool(*b),
            NodeKind::Int(i) => v.visit_i64(*i),
            NodeKind::Float(f) => v.visit_f64(*f),
            NodeKind::Str(s) => v.visit_borrowed_str(s),
            NodeKind::Seq(items) => v.visit_seq(SeqDe {
                de: self,
                items: items.iter(),
            }),
            NodeKind::Map(pairs) => v.visit_map(MapDe {
                de: self,
                pairs: pairs.iter(),
                value: None,
            }),
        };
        result.map_err(|e| e.at(pos))
    }

    fn deserialize_str<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        match &self.node.kind {
            NodeKind::Str(s) => v.visit_borrowed_str(s),
            NodeKind::Int(_) | NodeKind::Float(_) | NodeKind::Bool(_) => {
                let text = self.node.as_text().unwrap_or_default();
                v.visit_string(text)
            }
            _ => Err(<DeError as de::Error>::invalid_type(
                self.node.unexpected(),
                &v,
            )),
        }
        .map_err(|e: DeError| e.at(self.node.pos))
    }

    fn deserialize_string<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        self.deserialize_str(v)
    }

    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        match self.node.kind {
            NodeKind::Null => v.visit_none(),
            _ => v.visit_some(self),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        v: V,
    ) -> Result<V::Value, DeError> {
        match name {
            LOCATED => v.visit_seq(LocatedDe { de: self, step: 0 }),
            LENIENT => match v.visit_newtype_struct(self) {
                Ok(value) => Ok(value),
                Err(err) => {
                    self.sink.borrow_mut().push(err.at(self.node.pos));
                    Err(<DeError as de::Error>::custom(LENIENT_SWALLOWED))
                }
            },
            _ => v.visit_newtype_struct(self),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, DeError> {
        let pos = self.node.pos;
        match &self.node.kind {
            NodeKind::Str(_) => v.visit_enum(EnumDe {
                de: self,
                key: self.node,
                value: None,
            }),
            NodeKind::Map(pairs) if pairs.len() == 1 => v.visit_enum(EnumDe {
                de: self,
                key: &pairs[0].0,
                value: Some(&pairs[0].1),
            }),
            _ => Err(<DeError as de::Error>::invalid_type(
                self.node.unexpected(),
                &v,
            )),
        }
        .map_err(|e: DeError| e.at(pos))
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char bytes byte_buf
        unit unit_struct seq tuple tuple_struct map struct identifier ignored_any
    }
}

/// The message a [`Lenient`] parent sees; the real error is already in the sink.
const LENIENT_SWALLOWED: &str = "$flowbot::lenient-swallowed";

struct SeqDe<'a> {
    de: NodeDe<'a>,
    items: std::slice::Iter<'a, Node>,
}

impl<'de> SeqAccess<'de> for SeqDe<'de> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        match self.items.next() {
            Some(node) => seed.deserialize(self.de.child(node)).map(Some),
            None => Ok(None),
        }
    }
}

struct MapDe<'a> {
    de: NodeDe<'a>,
    pairs: std::slice::Iter<'a, (Node, Node)>,
    value: Option<&'a Node>,
}

impl<'de> MapAccess<'de> for MapDe<'de> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        match self.pairs.next() {
            Some((key, value)) => {
                self.value = Some(value);
                let pos = key.pos;
                seed.deserialize(self.de.child(key))
                    .map(Some)
                    .map_err(|e| e.at(pos))
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        match self.value.take() {
            Some(node) => seed.deserialize(self.de.child(node)),
            None => Err(<DeError as de::Error>::custom("значение без ключа")),
        }
    }
}

/// Feeds a `Located<T>` its line, its column, then its value.
struct LocatedDe<'a> {
    de: NodeDe<'a>,
    step: u8,
}

impl<'de> SeqAccess<'de> for LocatedDe<'de> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        let pos = self.de.node.pos;
        self.step += 1;
        match self.step {
            1 => seed.deserialize(pos.line.into_deserializer()).map(Some),
            2 => seed.deserialize(pos.column.into_deserializer()).map(Some),
            3 => seed.deserialize(self.de).map(Some),
            _ => Ok(None),
        }
    }
}

struct EnumDe<'a> {
    de: NodeDe<'a>,
    key: &'a Node,
    value: Option<&'a Node>,
}

impl<'de> EnumAccess<'de> for EnumDe<'de> {
    type Error = DeError;
    type Variant = Self;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self), DeError> {
        let pos = self.key.pos;
        let variant = seed
            .deserialize(self.de.child(self.key))
            .map_err(|e| e.at(pos))?;
        Ok((variant, self))
    }
}

impl<'de> VariantAccess<'de> for EnumDe<'de> {
    type Error = DeError;

    fn unit_variant(self) -> Result<(), DeError> {
        match self.value {
            None => Ok(()),
            Some(node) if node.kind == NodeKind::Null => Ok(()),
            Some(node) => Err(DeError {
                pos: node.pos,
                message: "у этого слова не бывает значения: уберите всё после двоеточия".to_owned(),
            }),
        }
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, DeError> {
        match self.value {
            Some(node) => seed.deserialize(self.de.child(node)),
            None => Err(DeError {
                pos: self.key.pos,
                message: "после этого слова нужно двоеточие и значение".to_owned(),
            }),
        }
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, v: V) -> Result<V::Value, DeError> {
        match self.value {
            Some(node) => self.de.child(node).deserialize_any(v),
            None => Err(de::Error::invalid_type(de::Unexpected::UnitVariant, &v)),
        }
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, DeError> {
        self.tuple_variant(0, v)
    }
}

/// A value that remembers where it stood in the flow file.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Located<T> {
    pub value: T,
    pub pos: Pos,
}

impl<T> Located<T> {
    pub fn new(value: T, pos: Pos) -> Self {
        Located { value, pos }
    }
}

impl<T> std::ops::Deref for Located<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Located<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Located<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a located value")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Located<T>, A::Error> {
                let missing = || de::Error::custom("located value is incomplete");
                let line: u32 = seq.next_element()?.ok_or_else(missing)?;
                let column: u32 = seq.next_element()?.ok_or_else(missing)?;
                let value: T = seq.next_element()?.ok_or_else(missing)?;
                Ok(Located::new(value, Pos { line, column }))
            }
            fn visit_newtype_struct<D: Deserializer<'de>>(
                self,
                d: D,
            ) -> Result<Located<T>, D::Error> {
                Ok(Located::new(T::deserialize(d)?, Pos::UNKNOWN))
            }
        }
        d.deserialize_newtype_struct(LOCATED, V(std::marker::PhantomData))
    }
}

impl<T: schemars::JsonSchema> schemars::JsonSchema for Located<T> {
    fn inline_schema() -> bool {
        T::inline_schema()
    }
    fn schema_name() -> std::borrow::Cow<'static, str> {
        T::schema_name()
    }
    fn schema_id() -> std::borrow::Cow<'static, str> {
        T::schema_id()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        T::json_schema(generator)
    }
}

/// A part of the flow that may be broken without hiding the rest: a type
/// error inside it goes to the sink, and the part reads as `None`.
#[derive(Debug, Clone, PartialEq)]
pub struct Lenient<T>(pub Option<T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Lenient<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Lenient<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a value")
            }
            fn visit_newtype_struct<D: Deserializer<'de>>(
                self,
                d: D,
            ) -> Result<Lenient<T>, D::Error> {
                T::deserialize(d).map(|v| Lenient(Some(v)))
            }
        }
        match d.deserialize_newtype_struct(LENIENT, V(std::marker::PhantomData)) {
            Ok(v) => Ok(v),
            Err(e) if e.to_string() == LENIENT_SWALLOWED => Ok(Lenient(None)),
            Err(e) => Err(e),
        }
    }
}

impl<T: schemars::JsonSchema> schemars::JsonSchema for Lenient<T> {
    fn inline_schema() -> bool {
        T::inline_schema()
    }
    fn schema_name() -> std::borrow::Cow<'static, str> {
        T::schema_name()
    }
    fn schema_id() -> std::borrow::Cow<'static, str> {
        T::schema_id()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        T::json_schema(generator)
    }
}

/// A YAML mapping read in file order, duplicates kept (the validator names them).
#[derive(Debug, Clone, PartialEq)]
pub struct OrderedMap<K, V>(pub Vec<(K, V)>);

impl<K, V> Default for OrderedMap<K, V> {
    fn default() -> Self {
        OrderedMap(Vec::new())
    }
}

impl<K, V> OrderedMap<K, V> {
    pub fn iter(&self) -> impl Iterator<Item = &(K, V)> {
        self.0.iter()
    }
}

impl<'de, K: Deserialize<'de>, V: Deserialize<'de>> Deserialize<'de> for OrderedMap<K, V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Vis<K, V>(std::marker::PhantomData<(K, V)>);
        impl<'de, K: Deserialize<'de>, V: Deserialize<'de>> Visitor<'de> for Vis<K, V> {
            type Value = OrderedMap<K, V>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a map")
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(OrderedMap(Vec::new()))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut pairs = Vec::new();
                while let Some(k) = map.next_key()? {
                    pairs.push((k, map.next_value()?));
                }
                Ok(OrderedMap(pairs))
            }
        }
        d.deserialize_map(Vis(std::marker::PhantomData))
    }
}

impl<K, V: schemars::JsonSchema> schemars::JsonSchema for OrderedMap<K, V> {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        format!("Map_of_{}", V::schema_name()).into()
    }
    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let value = generator.subschema_for::<V>();
        schemars::json_schema!({ "type": "object", "additionalProperties": value })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Node {
        match serde_saphyr::from_str::<Node>(text) {
            Ok(node) => node,
            Err(e) => panic!("test YAML must parse: {e}"),
        }
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Item {
        name: Located<String>,
        #[serde(default)]
        count: u32,
    }

    #[test]
    fn nodes_know_their_lines() {
        let node = parse("a: 1\nb:\n  - x\n  - y\n");
        let NodeKind::Map(pairs) = &node.kind else {
            panic!("a map")
        };
        assert_eq!(pairs[1].0.pos.line, 2);
        let NodeKind::Seq(items) = &pairs[1].1.kind else {
            panic!("a list")
        };
        assert_eq!(items[1].pos, Pos { line: 4, column: 5 });
    }

    #[test]
    fn located_values_carry_positions() {
        let node = parse("name: Анна\ncount: 2\n");
        let sink = Sink::default();
        let item = Item::deserialize(NodeDe::new(&node, &sink)).map_err(|e| e.message);
        let item = item
            .as_ref()
            .map(|i| (&i.name.value[..], i.name.pos.line, i.count));
        assert_eq!(item, Ok(("Анна", 1, 2)));
    }

    #[test]
    fn lenient_items_swallow_their_errors_and_the_rest_survives() {
        let node = parse("- name: a\n- name: b\n  count: many\n- nmae: c\n- name: d\n");
        let sink = Sink::default();
        let items = Vec::<Lenient<Item>>::deserialize(NodeDe::new(&node, &sink));
        let names: Vec<Option<String>> = items
            .unwrap_or_default()
            .into_iter()
            .map(|i| i.0.map(|i| i.name.value))
            .collect();
        assert_eq!(names, vec![Some("a".into()), None, None, Some("d".into())]);
        let errors = sink.into_inner();
        assert_eq!(errors.len(), 2);
        assert_eq!(errors[0].pos.line, 3);
        assert!(
            errors[0].message.contains("целое число"),
            "{}",
            errors[0].message
        );
        assert_eq!(errors[1].pos.line, 4);
        assert!(
            errors[1].message.contains("может быть, «name»"),
            "{}",
            errors[1].message
        );
    }

    #[test]
    fn duplicate_keys_are_kept_in_order() {
        let options = serde_saphyr::options! {
            duplicate_keys: serde_saphyr::DuplicateKeyPolicy::PassThrough,
        };
        let node = serde_saphyr::from_str_with_options::<Node>("a: 1\na: 2\n", options);
        let Ok(Node {
            kind: NodeKind::Map(pairs),
            ..
        }) = node
        else {
            panic!("a map: {node:?}")
        };
        assert_eq!(pairs.len(), 2);
    }
}
