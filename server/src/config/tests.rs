use super::*;

fn serve(args: &[&str]) -> Result<Serve, String> {
    let all = ["roomcast", "serve"].iter().chain(args);
    parse_from(all).map_err(|e| e.to_string()).map(|cli| match cli.command {
        CliCommand::Serve(serve) => *serve,
    })
}

#[test]
fn durations_are_written_as_people_write_them_and_plain_seconds_stay_accepted() {
    assert_eq!(duration("5s"), Ok(Duration::from_secs(5)));
    assert_eq!(duration("500ms"), Ok(Duration::from_millis(500)));
    assert_eq!(duration("1m"), Ok(Duration::from_secs(60)));
    assert_eq!(duration("1m 30s"), Ok(Duration::from_secs(90)));
    assert_eq!(duration("7"), Ok(Duration::from_secs(7)));
    assert_eq!(duration("0.25"), Ok(Duration::from_millis(250)));
    for bad in ["", "-1", "five", "5 parsecs", "inf"] {
        assert!(duration(bad).is_err(), "{bad:?} accepted");
    }
}

#[test]
fn a_bad_duration_flag_is_refused_naming_the_flag() {
    let e = serve(&["--heartbeat-timeout", "soon"]).unwrap_err();
    assert!(e.contains("--heartbeat-timeout") && e.contains("soon"), "{e}");
}
