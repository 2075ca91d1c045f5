//! `weightgate inspect PATH`: what a checkpoint holds, from its headers alone.

use clap::Args;

use crate::Exit;
use crate::checkpoint_args::CheckpointArgs;
use crate::run_args::JsonArg;
use crate::terminal::{say, say_err};
use weightgate_attest::reading::FileKind;

#[derive(Args, Debug)]
pub struct InspectArgs {
    #[command(flatten)]
    pub checkpoint: CheckpointArgs,
    #[command(flatten)]
    pub output: JsonArg,
}

pub fn run(args: InspectArgs) -> anyhow::Result<Exit> {
    if crate::show_envelope::is_envelope(&args.checkpoint.path) {
        return crate::show_envelope::run(&args.checkpoint.path, args.output.json);
    }
    let ck = args.checkpoint.open()?;
    let params = ck.parameters();
    if args.output.json {
        let doc = serde_json::json!({
            "path": args.checkpoint.path.display().to_string(),
            "single_file": ck.single_file,
            "total_bytes": ck.total_bytes(),
            "parameters": params,
            "files": ck.files,
            "indexes": ck.indexes,
            "warnings": ck.warnings,
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(Exit::Ok);
    }
    say!(
        "checkpoint {}: {} file(s), {} bytes",
        args.checkpoint.path.display(),
        ck.files.len(),
        ck.total_bytes()
    );
    for f in &ck.files {
        let kind = match f.kind {
            FileKind::Safetensors => "safetensors",
            FileKind::SafetensorsIndex => "index",
            FileKind::Other => "other",
        };
        let detail = f.header.as_ref().map_or(String::new(), |h| {
            format!(
                "  {} tensors, {} parameters",
                h.tensors.len(),
                h.parameters()
            )
        });
        say!("  {:<12} {:>14}  {}{detail}", kind, f.size, f.path);
    }
    say!(
        "tensors: {}   parameters: {}",
        params.tensors,
        group_digits(params.total)
    );
    for (dtype, n) in &params.by_dtype {
        say!("  {dtype:<12} {}", group_digits(*n));
    }
    for f in &ck.files {
        if let Some(h) = &f.header
            && !h.metadata.is_empty()
        {
            let pairs: Vec<String> = h.metadata.iter().map(|(k, v)| format!("{k}={v}")).collect();
            say!("metadata {}: {}", f.path, pairs.join(", "));
        }
    }
    for index in &ck.indexes {
        say!(
            "index {}: {} tensors mapped, agrees with the shard headers",
            index.path,
            index.weight_map.len()
        );
    }
    for w in &ck.warnings {
        say_err!("weightgate: warning: {w}");
    }
    Ok(Exit::Ok)
}

/// 1234567 -> "1,234,567": parameter counts are read by people.
pub fn group_digits(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
