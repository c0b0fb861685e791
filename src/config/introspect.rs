//! The field names a `#[derive(Deserialize)]` struct knows, read from serde itself (the names it
//! hands its deserializer), so that a misspelt stage option can be matched against the real list
//! without a second, hand-kept copy of it.

use serde::de::{self, Deserialize, Deserializer, Visitor};
use std::fmt;

/// The fields of struct `T`; empty for a type that is not a struct.
pub fn fields_of<'de, T: Deserialize<'de>>() -> &'static [&'static str] {
    let mut fields: &'static [&'static str] = &[];
    let _ = T::deserialize(Grab(&mut fields));
    fields
}

struct Grab<'a>(&'a mut &'static [&'static str]);

#[derive(Debug)]
struct Stop;

impl fmt::Display for Stop {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("field names read")
    }
}

impl std::error::Error for Stop {}

impl de::Error for Stop {
    fn custom<T: fmt::Display>(_: T) -> Self {
        Stop
    }
}

impl<'de> Deserializer<'de> for Grab<'_> {
    type Error = Stop;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
        Err(Stop)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Stop> {
        *self.0 = fields;
        Err(Stop)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::fields_of;

    #[test]
    fn a_structs_fields_come_from_serde() {
        #[derive(serde::Deserialize)]
        #[allow(dead_code)]
        struct Options {
            expression: String,
            #[serde(rename = "source")]
            from: Option<String>,
        }
        assert_eq!(fields_of::<Options>(), &["expression", "source"]);
        assert!(fields_of::<String>().is_empty());
    }
}
