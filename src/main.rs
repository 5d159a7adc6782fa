/// mimalloc instead of the system allocator: see Cargo.toml (measured by `bench campaign`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    partnerflow::cli::main()
}
