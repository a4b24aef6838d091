fn main() {
    println!("ipclab: the command-line tool is being built (issue 5).");
}
