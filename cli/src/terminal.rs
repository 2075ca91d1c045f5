//! Human output of strings an attacker controls (an envelope's keyid and payload type, names
//! in a statement, safetensors `__metadata__`, file names): control characters (C0, DEL, C1,
//! so every escape sequence) and bidirectional overrides are shown escaped, so no input can
//! move the cursor, recolour or rewrite what the terminal shows. JSON output is escaped by
//! the serializer already.

use std::borrow::Cow;

/// `text` with every character a terminal would act on written as `\u{..}`.
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(acts_on_terminal) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if acts_on_terminal(c) {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

fn acts_on_terminal(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `println!` for a line that may carry untrusted text: the whole line is escaped.
macro_rules! say {
    ($($arg:tt)*) => {
        println!("{}", $crate::terminal::escape(&format!($($arg)*)))
    };
}

/// `eprintln!` likewise.
macro_rules! say_err {
    ($($arg:tt)*) => {
        eprintln!("{}", $crate::terminal::escape(&format!($($arg)*)))
    };
}

pub(crate) use {say, say_err};

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn escape_sequences_and_bidi_overrides_are_shown_not_acted_on() {
        assert_eq!(escape("plain name é 模型"), "plain name é 模型");
        assert_eq!(
            escape("k\u{1b}[2J\u{1b}[32mALLOWED\r\n\u{7}"),
            "k\\u{1b}[2J\\u{1b}[32mALLOWED\\u{d}\\u{a}\\u{7}"
        );
        assert_eq!(
            escape("\u{9b}31m\u{202e}txt.exe"),
            "\\u{9b}31m\\u{202e}txt.exe"
        );
    }
}
