//! `vouchd copy FROM TO`: the command's side of [`crate::store::copy`] — opening both
//! databases, the progress display, and what is said at the end.

use crate::store::copy::{self, Copied, Step};
use crate::store::{self, pg_url};
use std::io::IsTerminal;
use std::path::Path;
use std::time::Instant;

/// Copies the database `from` into `to` (see `vouchd copy --help`).
pub fn run(from: &Path, to: &Path) -> Result<(), String> {
    if same_database(from, to) {
        return Err("FROM and TO name the same database".into());
    }
    if pg_url(from).is_none() && !from.is_file() {
        return Err(format!(
            "FROM: there is no database file {}",
            from.display()
        ));
    }
    let created = pg_url(to).is_none() && !to.exists();
    let result = copy_into(from, to);
    if result.is_err() && created {
        remove_database(to);
    }
    let copied = result?;
    let vouchers = copied.rows("vouchers");
    let ledger = copied.rows("ledger");
    let clients = copied.rows("clients");
    eprintln!(
        "vouchd: copied {} to {}: {vouchers} vouchers, {ledger} ledger entries, {clients} \
         clients; every table's rows counted and every voucher's balance checked against its \
         ledger on the target",
        shown(from),
        shown(to)
    );
    if copied.carried > 0 {
        eprintln!(
            "vouchd: {} vouchers carry a balance that disagrees with their ledger on the \
             source already; they were copied as they are",
            copied.carried
        );
    }
    if copied.replaced_clients > 0 {
        eprintln!(
            "vouchd: the target's own {} clients were replaced by the source's",
            copied.replaced_clients
        );
    }
    Ok(())
}

fn copy_into(from: &Path, to: &Path) -> Result<Copied, String> {
    let source = store::open_direct(from).map_err(|e| format!("FROM: {e}"))?;
    let mut target = store::open_direct(to).map_err(|e| format!("TO: {e}"))?;
    let mut display = Display::new();
    let started = Instant::now();
    let copied = copy::copy(&source, &mut target, &mut |step| display.show(step));
    display.end();
    if copied.is_ok() && display.tty {
        eprintln!(
            "vouchd: copy done in {:.1} s",
            started.elapsed().as_secs_f64()
        );
    }
    copied
}

/// The database's name as shown: a file's path, or a URL without its password.
fn shown(db: &Path) -> String {
    store::shown(db)
}

fn same_database(from: &Path, to: &Path) -> bool {
    match (pg_url(from), pg_url(to)) {
        (Some(a), Some(b)) => a == b,
        (None, None) => match (from.canonicalize(), to.canonicalize()) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        },
        _ => false,
    }
}

fn remove_database(db: &Path) {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut path = db.as_os_str().to_owned();
        path.push(suffix);
        let _ = std::fs::remove_file(path);
    }
}

/// Progress on stderr: on a terminal one line rewritten in place; otherwise a line per table
/// that holds rows, once it is copied.
struct Display {
    tty: bool,
    open_line: bool,
}

impl Display {
    fn new() -> Display {
        Display {
            tty: std::io::stderr().is_terminal(),
            open_line: false,
        }
    }

    fn show(&mut self, step: Step) {
        match step {
            Step::Rows { table, done, total } if self.tty => {
                eprint!("\r\x1b[2Kvouchd: copying {table}: {done} of {total} rows");
                self.open_line = true;
            }
            Step::Rows { table, done, total } => {
                if done == total && total > 0 {
                    eprintln!("vouchd: copied {total} rows of {table}");
                }
            }
            Step::Checking if self.tty => {
                eprint!("\r\x1b[2Kvouchd: checking the target");
                self.open_line = true;
            }
            Step::Checking => eprintln!("vouchd: checking the target"),
        }
    }

    fn end(&mut self) {
        if self.open_line {
            eprintln!();
            self.open_line = false;
        }
    }
}
