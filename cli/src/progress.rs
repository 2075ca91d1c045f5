//! A progress bar on stderr for long hashing, only when stderr is a terminal.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Below this much work a bar would only flicker.
const MIN_BYTES_FOR_BAR: u64 = 512 << 20;

pub struct Bar(Option<ProgressBar>);

impl Bar {
    pub fn new(total_bytes: u64, quiet: bool) -> Self {
        if quiet || total_bytes < MIN_BYTES_FOR_BAR || !std::io::stderr().is_terminal() {
            return Bar(None);
        }
        let bar = ProgressBar::with_draw_target(Some(total_bytes), ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template(
            "{spinner} hashing {bar:30} {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} eta {eta}",
        ) {
            bar.set_style(style);
        }
        Bar(Some(bar))
    }

    pub fn inc(&self, bytes: u64) {
        if let Some(b) = &self.0 {
            b.inc(bytes);
        }
    }

    pub fn finish(&self) {
        if let Some(b) = &self.0 {
            b.finish_and_clear();
        }
    }
}
