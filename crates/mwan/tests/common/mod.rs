use std::process::Command;

/// The `mwan` executable, called as `name` (argv[0], as through its link).
pub fn applet(name: &str) -> Command {
    use std::os::unix::process::CommandExt;
    let mut c = Command::new(env!("CARGO_BIN_EXE_mwan"));
    c.arg0(name);
    c
}
