//! Fuzzing the three input surfaces with proptest: the failover function's event decoding
//! (alarms in every delivery shape, and operator commands), the probe's and the verifier's
//! request parsing. Events are built from the words the decoders look for, in every shape
//! and type, with JSON nested inside strings as SNS carries it, control characters,
//! injection strings and arbitrary Unicode. Decoding must never panic; every rejection is
//! an `InvalidEvent` on one line with no control characters, and (decoding being pure) no
//! state is touched.

use proptest::prelude::*;
use serde_json::{Map, Value};

use crate::error::Error;
use crate::testing::{DECODER_WORDS as WORDS, config};

fn word() -> impl Strategy<Value = String> {
    prop::sample::select(WORDS).prop_map(str::to_owned)
}

/// Any JSON, biased towards what the decoders read.
fn event() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        1 => Just(Value::Null),
        1 => any::<bool>().prop_map(Value::Bool),
        1 => any::<i64>().prop_map(Value::from),
        1 => any::<f64>()
            .prop_filter("JSON numbers are finite", |f| f.is_finite())
            .prop_map(Value::from),
        4 => word().prop_map(Value::from),
        1 => ".{0,40}".prop_map(Value::from),
    ];
    leaf.prop_recursive(6, 96, 6, |inner| {
        prop_oneof![
            1 => prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            3 => prop::collection::vec((prop_oneof![4 => word(), 1 => ".{0,12}"], inner.clone()), 0..6)
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect::<Map<_, _>>())),
            // JSON inside a string, as SNS and EventBridge wrappers carry it.
            1 => inner.prop_map(|v| Value::from(v.to_string())),
        ]
    })
}

/// A rejection says what was wrong, on one line, with nothing that could forge a log line.
fn clear_rejection(result: Result<(), Error>) -> Result<(), TestCaseError> {
    match result {
        Ok(()) => Ok(()),
        Err(Error::InvalidEvent(message)) => {
            prop_assert!(!message.is_empty());
            prop_assert!(
                !message.chars().any(char::is_control),
                "control character in {message:?}"
            );
            Ok(())
        }
        Err(other) => Err(TestCaseError::fail(format!(
            "a non-input error from decoding: {other}"
        ))),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 20_000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn failover_events_never_panic_and_fail_clearly(event in event()) {
        clear_rejection(crate::decision::event::decode(&event, &config()).map(|_| ()))?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 5_000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn probe_requests_never_panic_and_fail_clearly(event in event()) {
        clear_rejection(crate::evidence::health::decode_request(&event).map(|_| ()))?;
    }

    #[test]
    fn verifier_requests_never_panic_and_fail_clearly(event in event()) {
        clear_rejection(crate::verifier::failback::decode_request(&event).map(|_| ()))?;
    }
}
