//! CLI transcripts: `tests/cmd/*.trycmd` hold command lines run in `cli/` (so testdata is
//! `../testdata`) with their exact output and exit code, so a change of anything users see
//! shows in review. After an intended change: `TRYCMD=overwrite cargo test -p weightgate --test
//! cli transcripts`, then read the diff.

#[test]
fn cli_transcripts() {
    trycmd::TestCases::new()
        .register_bin(
            "weightgate",
            std::path::Path::new(env!("CARGO_BIN_EXE_weightgate")),
        )
        // Help is wrapped to the terminal width; pin it (clap caps it at 100 anyway).
        .env("COLUMNS", "100")
        .env("RUST_LOG", "warn")
        .case("tests/cmd/*.trycmd");
}
