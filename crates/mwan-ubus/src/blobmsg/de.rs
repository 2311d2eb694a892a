//! A serde Deserializer over blobmsg [`Value`]s: the inverse of [`super::ser`],
//! so `mwanctl` reads mwand's ubus replies into its types without a JSON
//! detour (serde_json's value deserializer was instantiated for every reply
//! type; docs/footprint.md). Types map as libubox's JSON conversion does:
//! int8 is a boolean, other integers are integers, unspec is null (`None`),
//! tables are maps and structs, strings name unit enum variants, and a
//! one-entry table `{variant: value}` is any other variant.

use super::{JsonError, Table, Value};
use serde::de::{
    self, value::StrDeserializer, DeserializeSeed, IntoDeserializer, MapAccess, SeqAccess, Visitor,
};
use std::fmt;

impl de::Error for JsonError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        JsonError(msg.to_string())
    }
}

/// Deserialises a `T` from `value`.
pub fn from_value<T: de::DeserializeOwned>(value: &Value) -> Result<T, JsonError> {
    T::deserialize(value)
}

impl<'de> de::Deserializer<'de> for &Value {
    type Error = JsonError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, JsonError> {
        match self {
            Value::Unspec => visitor.visit_unit(),
            Value::Int8(v) => visitor.visit_bool(*v != 0),
            Value::Int16(v) => visitor.visit_i64((*v).into()),
            Value::Int32(v) => visitor.visit_i64((*v).into()),
            Value::Int64(v) => visitor.visit_i64(*v),
            Value::Double(v) => visitor.visit_f64(*v),
            Value::String(s) => visitor.visit_str(s),
            Value::Array(items) => visitor.visit_seq(Items(items.iter())),
            Value::Table(t) => visitor.visit_map(Entries {
                entries: t.0.iter(),
                value: None,
            }),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, JsonError> {
        match self {
            Value::Unspec => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        visitor: V,
    ) -> Result<V::Value, JsonError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, JsonError> {
        match self {
            Value::String(s) => visitor.visit_enum(s.as_str().into_deserializer()),
            Value::Table(Table(entries)) if entries.len() == 1 => {
                visitor.visit_enum(Variant(&entries[0].0, &entries[0].1))
            }
            _ => Err(de::Error::custom(
                "expected an enum variant: a string or a table of one entry",
            )),
        }
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple tuple_struct map struct
        identifier ignored_any
    }
}

struct Items<'a>(std::slice::Iter<'a, Value>);

impl<'de> SeqAccess<'de> for Items<'_> {
    type Error = JsonError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, JsonError> {
        self.0.next().map(|v| seed.deserialize(v)).transpose()
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.0.len())
    }
}

struct Entries<'a> {
    entries: std::slice::Iter<'a, (String, Value)>,
    value: Option<&'a Value>,
}

impl<'de> MapAccess<'de> for Entries<'_> {
    type Error = JsonError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, JsonError> {
        let Some((key, value)) = self.entries.next() else {
            return Ok(None);
        };
        self.value = Some(value);
        seed.deserialize(StrDeserializer::new(key)).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, JsonError> {
        seed.deserialize(self.value.take().unwrap_or(&Value::Unspec))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

/// `{variant: value}`: an enum variant that carries data.
struct Variant<'a>(&'a str, &'a Value);

impl<'de, 'a> de::EnumAccess<'de> for Variant<'a> {
    type Error = JsonError;
    type Variant = &'a Value;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, &'a Value), JsonError> {
        Ok((seed.deserialize(StrDeserializer::new(self.0))?, self.1))
    }
}

impl<'de> de::VariantAccess<'de> for &Value {
    type Error = JsonError;

    fn unit_variant(self) -> Result<(), JsonError> {
        de::Deserialize::deserialize(self)
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, JsonError> {
        seed.deserialize(self)
    }

    fn tuple_variant<V: Visitor<'de>>(self, _: usize, visitor: V) -> Result<V::Value, JsonError> {
        de::Deserializer::deserialize_any(self, visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, JsonError> {
        de::Deserializer::deserialize_any(self, visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::{Deserialize, Serialize};

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    enum Kind {
        Plain,
        Carrying(u32),
        Pair(u8, String),
        Named { n: i64 },
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Sample {
        b: bool,
        small: u8,
        big: u64,
        negative: i64,
        ratio: f64,
        whole_ratio: f64,
        text: String,
        missing: Option<u32>,
        none: Option<String>,
        list: Vec<Kind>,
        #[serde(default)]
        absent: Vec<u8>,
        nested: Option<Box<Sample>>,
    }

    fn sample() -> Sample {
        Sample {
            b: true,
            small: 7,
            big: 5_000_000_000,
            negative: -3,
            ratio: 0.25,
            whole_ratio: 2.0,
            text: "t".into(),
            missing: None,
            none: None,
            list: vec![
                Kind::Plain,
                Kind::Carrying(4),
                Kind::Pair(1, "x".into()),
                Kind::Named { n: -1 },
            ],
            absent: vec![],
            nested: Some(Box::new(Sample {
                b: false,
                small: 0,
                big: 0,
                negative: 0,
                ratio: 1.5,
                whole_ratio: 3.0,
                text: String::new(),
                missing: Some(1),
                none: Some("s".into()),
                list: vec![],
                absent: vec![1],
                nested: None,
            })),
        }
    }

    #[test]
    fn reads_back_what_the_serializer_wrote_as_serde_json_does() {
        let mut value = super::super::ser::to_value(&sample()).unwrap();
        // An absent field: `#[serde(default)]` and `Option` fields may be left out.
        if let Value::Table(t) = &mut value {
            t.0.retain(|(k, _)| k != "missing" && k != "absent");
            // Whole doubles may come back as integers from a JSON peer.
            t.0.iter_mut()
                .filter(|(k, _)| k == "whole_ratio")
                .for_each(|(_, v)| *v = Value::Int32(2));
        }
        let ours: Sample = from_value(&value).unwrap();
        assert_eq!(ours, sample());
        let theirs: Sample = serde_json::from_value(value.to_json()).unwrap();
        assert_eq!(ours, theirs);
    }

    #[test]
    fn wrong_types_are_errors_naming_them() {
        let e = from_value::<Sample>(&Value::Table(Table::new().with("b", Value::string("yes"))))
            .unwrap_err();
        assert!(
            e.0.contains("invalid type: string \"yes\", expected a boolean"),
            "{e}"
        );
        let e = from_value::<u8>(&Value::Int32(300)).unwrap_err();
        assert!(e.0.contains("300"), "{e}");
        let e = from_value::<Vec<u8>>(&Value::Unspec).unwrap_err();
        assert!(e.0.contains("expected a sequence"), "{e}");
        assert!(from_value::<Kind>(&Value::string("nope")).is_err());
        assert!(from_value::<u64>(&Value::Int64(-1)).is_err());
    }
}
