//! AWS region names, validated once so the rest of the code never sees a malformed one.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

/// A syntactically valid AWS region name such as `us-east-1` or `us-gov-west-1`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Region(String);

impl Region {
    /// Accepts `<2 letters>-<word>[-<word>...]-<digits>`, all lower case: every commercial,
    /// GovCloud, China and ISO partition region has that shape.
    pub fn parse(text: &str) -> Result<Self, String> {
        let parts: Vec<&str> = text.split('-').collect();
        let well_formed = text.len() <= 32
            && parts.len() >= 3
            && parts[0].len() == 2
            && parts[0].bytes().all(|b| b.is_ascii_lowercase())
            && parts[1..parts.len() - 1]
                .iter()
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
            && parts.last().is_some_and(|p| {
                !p.is_empty() && p.len() <= 2 && p.bytes().all(|b| b.is_ascii_digit())
            });
        if well_formed {
            Ok(Region(text.to_owned()))
        } else {
            Err(format!(
                "{:?} is not an AWS region name (expected something like us-east-1)",
                crate::text::clip(text, 40)
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Region {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Region::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_real_region_names() {
        for name in [
            "us-east-1",
            "eu-central-2",
            "ap-southeast-5",
            "us-gov-west-1",
            "cn-northwest-1",
            "us-isob-east-1",
        ] {
            assert_eq!(Region::parse(name).map(|r| r.0), Ok(name.to_owned()));
        }
    }

    #[test]
    fn rejects_malformed_names() {
        for name in [
            "",
            "us",
            "us-east",
            "US-EAST-1",
            "us-east-1a",
            "us--1",
            "useast1",
            "us-east-1 ",
            "us-east-001",
        ] {
            assert!(Region::parse(name).is_err(), "{name:?} should be rejected");
        }
    }
}
