# A 20-rule filter of the kind users write (headers, addresses, body, lists, flags); on
# smtp-source's messages none of the rules match, so every test runs and the implicit keep
# stores the message: the most work per message.
require ["fileinto", "imap4flags", "body", "variables", "relational", "comparator-i;ascii-numeric", "mailbox", "envelope", "subaddress", "regex"];
if header :contains "list-id" "announce" { fileinto :create "Lists/announce"; stop; }
if header :contains "list-id" "dev" { fileinto :create "Lists/dev"; stop; }
if address :domain :is "from" ["bank.example", "insurer.example"] { fileinto :create "Money"; stop; }
if address :is "from" "boss@corp.example" { addflag "\\Flagged"; }
if header :matches "subject" "*[JIRA]*" { fileinto :create "Tickets"; stop; }
if header :regex "subject" "^(Re|Fwd): .*invoice [0-9]+" { fileinto :create "Invoices"; stop; }
if anyof (header :contains "x-mailer" "BulkMailer", header :is "precedence" "bulk") { fileinto :create "Bulk"; stop; }
if envelope :detail "to" "shop" { fileinto :create "Shopping"; stop; }
if header :contains "subject" ["newsletter", "digest", "weekly update"] { fileinto :create "News"; stop; }
if address :localpart :is "from" ["noreply", "no-reply", "donotreply"] { addflag "\\Seen"; }
if size :over 5M { fileinto :create "Large"; stop; }
if header :value "ge" :comparator "i;ascii-numeric" "x-priority" "4" { fileinto :create "Low"; stop; }
if header :contains "to" "team@corp.example" { fileinto :create "Team"; stop; }
if body :text :contains "unsubscribe from this list" { fileinto :create "Lists/other"; stop; }
if exists "x-github-reason" { fileinto :create "GitHub"; stop; }
if header :matches "from" "*@*.corp.example" { set "dept" "corp"; }
if string :is "${dept}" "corp" { addflag "Work"; }
if header :contains "subject" "urgent" { addflag "\\Flagged"; }
if address :domain :matches "from" "*.gov.example" { fileinto :create "Gov"; stop; }
if header :contains "subject" "password reset" { fileinto :create "Security"; stop; }
