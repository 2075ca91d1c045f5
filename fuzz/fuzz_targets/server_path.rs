//! Any request path through the gate's router over an admitted store: no panic, no 5xx, never the refused model's bytes.
#![no_main]
use std::sync::OnceLock;

use weightgate_fuzz::oracles::{Server, server_path};

static SERVER: OnceLock<Server> = OnceLock::new();

libfuzzer_sys::fuzz_target!(|data: &[u8]| server_path(SERVER.get_or_init(Server::new), data));
