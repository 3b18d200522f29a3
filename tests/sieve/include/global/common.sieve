require ["include", "variables"];
global "flag";
set "flag" "set";
if exists "list-id" { discard; return; }
redirect "common@example.net";
