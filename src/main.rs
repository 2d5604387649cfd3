fn main() {
    println!("kubectl-ko: under construction");
}
