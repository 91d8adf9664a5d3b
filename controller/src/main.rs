fn main() {
    eprintln!("secrets-controller: not implemented yet");
    std::process::exit(2);
}
