//! The `lab` binary.

fn main() -> std::process::ExitCode {
    let code = lab_cli::run(std::env::args_os());
    std::process::ExitCode::from(u8::try_from(code).unwrap_or(1))
}
