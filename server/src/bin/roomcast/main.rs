//! The `roomcast` binary: mimalloc as the allocator, a tokio runtime whose idle workers hand
//! memory back, and [`roomcast_server::cli`].

mod allocator;

fn main() -> std::process::ExitCode {
    allocator::configure();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        // An idle worker hands its freed memory back (at most once a second each).
        .on_thread_park(allocator::on_park)
        .build();
    match runtime {
        Ok(runtime) => runtime.block_on(roomcast_server::cli()),
        Err(e) => {
            eprintln!("roomcast: cannot start the runtime: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
