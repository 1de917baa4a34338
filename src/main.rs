use std::process::ExitCode;

fn main() -> ExitCode {
    return_large_blocks_to_the_system();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let command = match vouchd::cli::parse(&args) {
        Ok(command) => command,
        Err(err) => {
            eprintln!("vouchd: {}\n\n{}", err.message, err.usage);
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

/// Makes glibc's malloc hand every block of 256 KiB or more straight back to the system when it
/// is freed. By default the threshold rises to the largest block freed so far, so after the
/// first argon2 verification (19 MiB of working memory) each worker thread's arena kept its own
/// 19 MiB for good: a few hundred failed logins grew the server by ~190 MB.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn return_large_blocks_to_the_system() {
    const M_MMAP_THRESHOLD: i32 = -3;
    const M_ARENA_MAX: i32 = -8;
    extern "C" {
        fn mallopt(param: i32, value: i32) -> i32;
    }
    // SAFETY: mallopt only sets tuning parameters of glibc's allocator; it is called once,
    // before any other thread exists.
    unsafe {
        mallopt(M_MMAP_THRESHOLD, 256 * 1024);
        // glibc gives up to 8 arenas per core, each keeping what its threads freed; with ~130
        // threads at --threads 64 that kept ~6 MB more at the same request rates.
        mallopt(M_ARENA_MAX, 4);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn return_large_blocks_to_the_system() {}
