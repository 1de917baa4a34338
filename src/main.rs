use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = match vouchd::cli::parse(&args) {
        Ok(command) => command,
        Err(message) => {
            eprintln!("vouchd: {message}\n\n{}", vouchd::cli::USAGE);
            return ExitCode::from(2);
        }
    };
    match vouchd::commands::run(command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("vouchd: {message}");
            ExitCode::FAILURE
        }
    }
}
