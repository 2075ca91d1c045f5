//! Processes the tests run beside the binary: a SeaweedFS cluster and `weightgate serve`.

pub mod seaweed;
pub mod serve;
