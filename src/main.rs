fn main() -> std::process::ExitCode {
    partnerflow::cli::main()
}
