# Hand-written Sieve scripts for the differential test against Pigeonhole's sieve-test
# (tests/sieve_differential.rs). Each "### name" starts a script; every script runs on every
# message in tests/sieve/messages/. The word after the name is the extension it exercises.

### keep-only core
keep;

### empty core

### discard-stop core
discard; stop; keep;

### if-elsif-else core
if header :contains "subject" "hello" { discard; }
elsif header :contains "subject" "pills" { keep; }
else { redirect "archive@example.net"; }

### anyof-allof-not core
if anyof (header :is "x-priority" "2", not exists "message-id") { redirect "a@example.net"; }
if allof (exists ["from","to"], not size :over 1K) { redirect "b@example.net"; }

### size core
if size :over 500 { redirect "big@example.net"; }
if size :under 450 { redirect "small@example.net"; }

### exists core
if exists "list-id" { discard; }
if exists ["date", "x-nothere"] { redirect "both@example.net"; }

### header-matches core
if header :matches "subject" "*order*shipped" { redirect "orders@example.net"; }
if header :matches "subject" "[dev]*" { discard; }
if header :matches "from" "?lice*" { keep; }

### header-octet core
if header :is :comparator "i;octet" "subject" "hello world, order 1234 shipped" { discard; }
if header :contains :comparator "i;octet" "subject" "Hello" { redirect "case@example.net"; }

### header-multi core
if header :contains ["to", "cc"] ["dave", "carol"] { redirect "copies@example.net"; }
if header :is "comments" "second" { discard; }

### address-parts core
if address :domain "from" "example.org" { redirect "domain@example.net"; }
if address :localpart "from" "alice+news" { discard; }
if address :all :is "to" "carol@example.net" { keep; }

### address-domain-matches core
if address :domain :matches ["to","cc"] "*.example.com" { redirect "sub@example.net"; }
if address :is "reply-to" "collect@another.example" { discard; }

### address-groups core
if address :all :contains "to" "undisclosed" { redirect "u@example.net"; }
if address :domain :is "cc" "sub.example.com" { discard; }

### redirect-twice core
redirect "x@example.net"; redirect "X@example.net"; redirect "y@example.net";

### stop-in-block core
if true { redirect "first@example.net"; stop; }
redirect "never@example.net";

### comments-and-strings core
/* block comment */ if header :contains "subject" text:
order
.
# line comment
{ discard; }

### multiline-dots core
if header :contains "subject" "hello" { redirect text:
..dotted@example.net
.
; }

### fileinto fileinto
require "fileinto";
if header :contains "subject" "pills" { fileinto "Junk"; }
elsif exists "list-id" { fileinto "Lists/dev"; }
else { fileinto "INBOX.Other"; }

### fileinto-twice fileinto
require "fileinto";
fileinto "A"; fileinto "A"; fileinto "B"; keep;

### fileinto-inbox fileinto
require "fileinto";
fileinto "INBOX"; keep;

### fileinto-error fileinto
fileinto "A";

### reject reject
require "reject";
if header :contains "subject" "pills" { reject "No spam, please."; }

### reject-conflict reject
require ["reject", "fileinto"];
if exists "subject" { fileinto "X"; reject "no"; }

### reject-redirect reject
require "reject";
if exists "date" { redirect "a@example.net"; reject "no"; }

### reject-discard reject
require "reject";
discard; reject "go away";

### ereject ereject
require "ereject";
if header :matches "from" "*daemon*" { ereject "bounces not wanted"; }

### ereject-keep ereject
require "ereject";
if true { keep; ereject "x"; }

### envelope envelope
require "envelope";
if envelope :all :is "from" "sender+tag@example.org" { discard; }
if envelope :domain "to" "example.com" { redirect "env@example.net"; }

### envelope-parts envelope
require ["envelope", "subaddress"];
if envelope :user "from" "sender" { redirect "user@example.net"; }
if envelope :detail "to" "box" { redirect "detail@example.net"; }
if envelope :localpart :matches "to" "bob*" { keep; }

### envelope-bad envelope
require "envelope";
if envelope "x-other" "a" { keep; }

### encoded encoded-character
require ["encoded-character"];
if header :contains "subject" "${hex:48 65 6c 6c 6f}" { redirect "hex@example.net"; }
if header :contains "subject" "${unicode:0043}HEAP" { discard; }

### encoded-off encoded-character
if header :contains "subject" "${hex:48}ello" { discard; }

### flags imap4flags
require ["imap4flags"];
addflag "\\Flagged";
if header :contains "subject" "pills" { addflag ["\\Seen", "$Junk"]; }
keep;

### flags-implicit imap4flags
require ["imap4flags"];
setflag "\\Answered Custom";
removeflag "Custom";

### flags-fileinto imap4flags
require ["imap4flags", "fileinto"];
fileinto :flags ["\\Flagged", "Work"] "Work";
addflag "Later";

### hasflag imap4flags
require ["imap4flags"];
addflag ["a", "b c"];
if hasflag "b" { redirect "hasb@example.net"; }
if hasflag :is ["z", "C"] { discard; }

### hasflag-count imap4flags
require ["imap4flags", "relational", "comparator-i;ascii-numeric"];
addflag "x y z";
if hasflag :count "eq" :comparator "i;ascii-numeric" "3" { discard; }

### copy copy
require ["copy", "fileinto"];
fileinto :copy "Archive";
redirect :copy "backup@example.net";

### copy-no-keep copy
require "copy";
redirect :copy "c@example.net"; discard;

### body body
require "body";
if body :contains "invoice" { redirect "body@example.net"; }
if body :contains "report" { discard; }

### body-raw body
require "body";
if body :raw :contains "=C3=A9" { redirect "raw@example.net"; }
if body :raw :contains "JVBER" { discard; }

### body-content body
require "body";
if body :content "text/html" :contains "<b>" { redirect "html@example.net"; }
if body :content "application" :contains "secret" { discard; }

### body-text body
require "body";
if body :text :contains "lost words" { discard; }
if body :text :contains "broken" { redirect "text@example.net"; }

### variables variables
require ["variables", "fileinto"];
if header :matches "subject" "[*] *" { set "list" "${1}"; fileinto "lists.${list}"; }
if header :matches "from" "*@*" { set :lower "dom" "${2}"; redirect "x@${dom}"; }

### variables-modifiers variables
require ["variables", "fileinto"];
set :upperfirst "a" "hello";
set :length "n" "${a}";
set :quotewildcard "q" "a*b?";
fileinto "${a}-${n}-${q}";

### variables-string variables
require ["variables"];
set "x" "abc";
if string :is "${x}" "abc" { redirect "s@example.net"; }
if string :matches "${x}" "a?c" { discard; }

### variables-unknown variables
require ["variables", "fileinto"];
fileinto "box${nosuch}end";

### variables-matchvars variables
require ["variables", "fileinto"];
if address :matches "from" "*+*@*" { fileinto "sub/${2}"; }

### vacation vacation
require "vacation";
vacation "I am away.";

### vacation-args vacation
require "vacation";
vacation :days 3 :subject "Out of office" :from "bob@example.com" :addresses ["bob@example.com"] "Back Monday.";

### vacation-handle vacation
require "vacation";
if header :contains "subject" "pills" { stop; }
vacation :handle "h1" :days 1 "Away.";

### vacation-seconds vacation-seconds
require ["vacation", "vacation-seconds"];
vacation :seconds 7200 "Away for two hours.";

### vacation-seconds-long vacation-seconds
require ["vacation", "vacation-seconds"];
vacation :seconds 259200 :subject "Gone" "Away.";

### relational relational
require ["relational", "comparator-i;ascii-numeric"];
if header :value "ge" :comparator "i;ascii-numeric" "x-priority" "2" { redirect "prio@example.net"; }
if header :count "ge" :comparator "i;ascii-numeric" "comments" "3" { discard; }

### relational-count-address relational
require ["relational", "comparator-i;ascii-numeric"];
if address :count "gt" :comparator "i;ascii-numeric" ["to", "cc"] "1" { redirect "many@example.net"; }
if header :value "lt" "subject" "M" { discard; }

### numeric comparator-i;ascii-numeric
require ["comparator-i;ascii-numeric", "relational"];
if header :is :comparator "i;ascii-numeric" "x-priority" "02" { redirect "two@example.net"; }
if header :value "gt" :comparator "i;ascii-numeric" "x-spam-score" "9" { discard; }

### subaddress subaddress
require "subaddress";
if address :user "from" "alice" { redirect "user@example.net"; }
if address :detail "from" "news" { discard; }
if address :detail "to" "" { keep; }

### date date
require ["date", "relational"];
if date :value "ge" :originalzone "date" "date" "2026-01-01" { redirect "recent@example.net"; }
if date :is :originalzone "date" "weekday" "0" { discard; }

### date-zone date
require ["date", "variables", "fileinto"];
if date :matches :zone "+0000" "date" "date" "*" { fileinto "utc/${1}"; }

### date-parts date
require ["date", "variables", "fileinto"];
if date :matches :originalzone "date" "std11" "*" { set "a" "${1}"; }
if date :matches :originalzone "date" "iso8601" "*" { set "b" "${1}"; }
if date :matches :originalzone "date" "julian" "*" { fileinto "${a}|${b}|${1}"; }

### currentdate date
require ["date", "relational"];
if currentdate :value "ge" "year" "2020" { redirect "now@example.net"; }
if currentdate :value "lt" "date" "2000-01-01" { discard; }

### index index
require ["index", "date", "variables", "fileinto"];
if header :index 2 :contains "comments" "sec" { redirect "second@example.net"; }
if header :index 1 :last :is "received" "from a by b; Wed, 2 Dec 2026 08:15:03 +0100" { discard; }

### index-date index
require ["index", "date", "relational"];
if date :index 1 :last :value "ge" :originalzone "received" "time" "08:15:02" { discard; }

### mailbox mailbox
require ["mailbox", "fileinto"];
fileinto :create "Created";
if mailboxexists "INBOX" { redirect "has@example.net"; }

### include include
require "include";
include :optional "does-not-exist";
keep;

### include-missing include
require "include";
include :personal "missing-script";

### include-personal include
require ["include", "variables"];
include :personal "helper";
if string :is "${x}" "" { redirect "local@example.net"; }

### include-global include
require ["include", "variables"];
global "flag";
include :global "common";
if string :is "${flag}" "set" { redirect "global@example.net"; }

### include-once include
require "include";
include :once "helper";
include :once :personal "helper";
include :global "stopper";
redirect "after@example.net";

### duplicate duplicate
require "duplicate";
if duplicate { discard; }
if duplicate :header "subject" :seconds 60 { redirect "dup@example.net"; }

### duplicate-uniqueid duplicate
require ["duplicate", "variables"];
if header :matches "message-id" "*" { set "id" "${1}"; }
if duplicate :uniqueid "${id}" :handle "h" :last { discard; }

### editheader editheader
require ["editheader"];
addheader "X-Sieve" "processed";
if header :is "x-sieve" "processed" { redirect "edited@example.net"; }

### editheader-delete editheader
require ["editheader"];
deleteheader "subject";
if not exists "subject" { redirect "nosubject@example.net"; }
deleteheader :contains "comments" "sec";
if header :count "eq" "comments" "2" { discard; }

### editheader-delete-count editheader
require ["editheader", "relational", "comparator-i;ascii-numeric"];
deleteheader :index 1 "comments";
if header :count "eq" :comparator "i;ascii-numeric" "comments" "2" { discard; }

### spamtest spamtest
require ["spamtest", "relational", "comparator-i;ascii-numeric"];
if spamtest :value "ge" :comparator "i;ascii-numeric" "5" { discard; }
if spamtest :value "eq" :comparator "i;ascii-numeric" "0" { redirect "untested@example.net"; }

### spamtest-levels spamtest
require ["spamtest", "variables", "fileinto"];
if spamtest :matches "*" { fileinto "level${1}"; }

### spamtestplus spamtestplus
require ["spamtestplus", "relational", "comparator-i;ascii-numeric"];
if spamtest :percent :value "gt" :comparator "i;ascii-numeric" "50" { discard; }
if spamtest :percent :value "lt" :comparator "i;ascii-numeric" "10" { redirect "low@example.net"; }

### spamtestplus-levels spamtestplus
require ["spamtestplus", "variables", "fileinto"];
if spamtest :percent :matches "*" { fileinto "pct${1}"; }

### virustest virustest
require ["virustest", "relational", "comparator-i;ascii-numeric"];
if virustest :value "ge" :comparator "i;ascii-numeric" "4" { discard; }
if virustest :value "eq" :comparator "i;ascii-numeric" "1" { redirect "clean@example.net"; }

### virustest-levels virustest
require ["virustest", "variables", "fileinto"];
if virustest :matches "*" { fileinto "virus${1}"; }

### regex regex
require ["regex", "variables", "fileinto"];
if header :regex "subject" "order ([0-9]+)" { fileinto "order-${1}"; }
if header :regex "from" "^.*@(cheap|another)-.*$" { discard; }

### regex-address regex
require ["regex"];
if address :regex :domain "from" "^example\\.(org|com)$" { redirect "re@example.net"; }
if header :regex :comparator "i;octet" "subject" "^[A-Z ]+!!!" { discard; }

### error-unknown-command core
frobnicate;

### error-unknown-test core
if frob "x" { keep; }

### error-missing-semicolon core
keep

### error-unknown-tag core
if header :frob "a" "b" { keep; }

### error-require-late core
keep;
require "fileinto";

### error-unknown-capability core
require "x-nonexistent";

### error-bad-relation relational
require "relational";
if header :value "xx" "a" "b" { keep; }

### error-numeric-contains comparator-i;ascii-numeric
require "comparator-i;ascii-numeric";
if header :contains :comparator "i;ascii-numeric" "a" "1" { keep; }

### error-two-vacations vacation
require "vacation";
vacation "a"; vacation :handle "x" "b";

### error-regex-bad regex
require "regex";
if header :regex "subject" "([" { keep; }

### mailbox-exists-list mailbox
require ["mailbox", "fileinto"];
if mailboxexists ["INBOX", "Nonexistent"] { discard; }
if not mailboxexists "Nonexistent" { fileinto :create "New/Sub"; }

### subaddress-to subaddress
require ["subaddress", "fileinto", "variables"];
if address :user :is "to" "bob" { fileinto "user-bob"; }
if address :detail :matches "to" "*" { fileinto "detail-${1}"; }
