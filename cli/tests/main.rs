//! The CLI's integration tests, one module per topic, in one test binary: each binary links the
//! whole workspace, so one instead of two dozen saves most of the link time.
//! `cargo test -p weightgate --test cli MODULE::` runs one topic.

mod common;
mod support;

mod attest_cli;
mod blob_identity_race;
mod bucket_existing_blob;
mod checkpoint_cli;
mod commit_faults;
mod commit_rules;
mod commit_store_error;
mod completions;
mod crash_safety;
mod duplicate_paths;
mod export_checked;
mod export_cli;
mod folder_commit_race;
mod fuzz_properties;
mod gate_bucket;
mod gate_bucket_policy;
mod gate_bucket_upload;
mod gate_refusals;
mod gate_server;
mod gate_tenants;
mod gate_upload;
mod hf_cache;
mod hf_loaded;
mod hf_partial_model_sig;
mod hostile_corpus;
mod inspect_revocation;
mod oms;
mod oms_bundle_limits;
mod oms_certificates;
mod oms_older_releases;
mod oms_sigstore;
mod oms_sigstore_public;
mod pages;
mod pkcs11;
mod pkcs11_removed_token;
mod readmission;
mod regimes;
mod store_bucket;
mod store_bucket_gc_race;
mod store_bucket_upload_gc;
mod store_folder_gc;
mod store_gc_reuse;
mod temp_named_files;
mod terminal_output;
mod transcripts;
mod vectors;
mod verify_cli;
mod work_before_authentication;
mod xet_gc;
mod xet_staging_cap;
mod xet_upload;
