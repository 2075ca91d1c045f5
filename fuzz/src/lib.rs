//! Shared by the fuzz targets: the properties each one checks.
pub mod oracles;
