//! `weightgate keygen --out NAME`: a new Ed25519 signing key.

use std::path::PathBuf;

use clap::Args;

use crate::Outcome;
use weightgate_attest::{generate_signing_key, write_key_pair};

#[derive(Args, Debug)]
pub struct KeygenArgs {
    /// Writes NAME.key (PKCS#8 PEM, mode 0600) and NAME.pub (SPKI PEM); never overwrites.
    #[arg(long, value_name = "NAME")]
    pub out: PathBuf,
}

pub fn run(args: KeygenArgs) -> anyhow::Result<Outcome> {
    let key = generate_signing_key();
    let id = write_key_pair(&args.out, &key)?;
    println!("{id}");
    eprintln!(
        "wrote {0}.key (keep it secret) and {0}.pub; key id {id}",
        args.out.display()
    );
    Ok(Outcome::Ok)
}
