//! End-to-end harness shared by the suites in `tests/tests/` and by the sandbox.
//!
//! Every piece here is a real process or a faithful fake where nothing real can run on
//! these machines (README "Tests"): the Kubernetes API emulator, Debian's docker-registry,
//! real git remotes, and an HTTP fake of the forge REST APIs.

/// The emulator, the benchmarks and the suites allocate with mimalloc, as the reconciler does:
/// the emulator serves every benchmark's API requests in the benchmark's own process, and
/// glibc's malloc made it the slower half of a 100,000-entry sync.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub mod bench;
pub mod emulator;
pub mod fixture;
pub mod forge;
pub mod git;
pub mod kubectl;
pub mod process;
pub mod registry;
pub mod suite;
pub mod trap;
