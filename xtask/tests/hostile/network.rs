// Reach a service on the grader's own loopback.
pub fn __attack() {
    if std::net::TcpStream::connect("127.0.0.1:@PORT@").is_ok() {
        println!("REACHED the host's service");
    }
}
