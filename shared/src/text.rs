//! Free text that comes from outside (a `reason`, an alarm name) is bounded and made safe
//! to log and store before anything else sees it.

/// The longest `reason` we keep. Longer ones are rejected, not silently cut, so the
/// operator knows what was recorded.
pub const MAX_REASON_CHARS: usize = 512;

/// Shortens `text` to at most `max` characters for use inside an error message.
pub fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let mut clipped: String = text.chars().take(max).collect();
        clipped.push('…');
        clipped
    }
}

/// Replaces control characters (newlines, escapes, NULs) with spaces so a value cannot
/// forge log lines or terminal sequences.
pub fn sanitize(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_owned()
}

/// Validates an operator-supplied reason: bounded length, control characters removed.
pub fn reason(text: &str) -> Result<String, String> {
    let count = text.chars().count();
    if count > MAX_REASON_CHARS {
        return Err(format!(
            "reason is {count} characters long; at most {MAX_REASON_CHARS} are allowed"
        ));
    }
    Ok(sanitize(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_become_spaces() {
        assert_eq!(
            sanitize("drill\n{\"level\":\"ERROR\"}\u{1b}[31m"),
            "drill {\"level\":\"ERROR\"} [31m"
        );
    }

    #[test]
    fn long_reasons_are_rejected_with_the_limit() {
        let long = "x".repeat(MAX_REASON_CHARS + 1);
        let err = reason(&long).unwrap_err();
        assert!(err.contains("at most 512"), "{err}");
        assert_eq!(reason("ok").as_deref(), Ok("ok"));
    }

    #[test]
    fn clip_marks_what_it_cut() {
        assert_eq!(clip("abcdef", 3), "abc…");
        assert_eq!(clip("abc", 3), "abc");
    }
}
