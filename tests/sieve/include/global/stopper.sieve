if header :contains "subject" "pills" { discard; stop; }
