# Sourced by the web-log benches: weblog_config LOG prints a portex
# config with one access_log source reading LOG (combined format, by
# client address, weak identities allowed).
weblog_config() {
	cat <<CFG
version: 1
controller: {name: Bench Ltd, contact: privacy@bench.example,
             authority: Jersey Office of the Information Commissioner}
categories:
  usage: {purposes: [security], lawful_basis: [legitimate_interests],
          retention: 26 months}
sources:
  - id: weblog
    collector: access_log
    category: usage
    weak_identities: true
    options: {paths: ["$1"], format: combined, match: [ip]}
CFG
}
