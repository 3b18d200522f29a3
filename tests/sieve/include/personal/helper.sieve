require ["fileinto", "variables"];
set "x" "hidden";
if header :contains "subject" "hello" { fileinto "Helper"; }
