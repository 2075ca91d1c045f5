//! File input and output every part needs: reads capped at a size an attacker cannot pick, and
//! writes that replace a file whole or not at all.

mod atomic_file;
mod bounded_read;

pub(crate) use atomic_file::is_temp_for;
pub use atomic_file::{Replace, write_atomically};
pub use bounded_read::{MAX_CONFIG_FILE_LEN, MAX_KEY_FILE_LEN, read_capped, read_capped_to_string};
