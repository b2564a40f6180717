import { EXIT_CODES_HELP } from "./exit-codes.js";

export const HELP = `Usage:
  zipstream [options] <src...> <dest>
  zipstream [options] --jobs FILE [--parallel N]
  zipstream cleanup s3://bucket/prefix --older-than AGE [--dry-run] [--force]
  zipstream verify s3://bucket/key.zip [--expect s3://bucket/prefix/ | --manifest FILE] [--deep]
  zipstream [options] <s3-src...> <s3-dest> --workers N [--plan s3://bucket/plan.json]
  zipstream plan [options] <s3-src...> <s3-dest> --plan s3://bucket/plan.json
  zipstream run-segment PLAN N | finalize PLAN | resume PLAN | abort PLAN [--keep-plan]

Streams a ZIP archive of the sources into the destination with flat memory.
Sources and destination are s3://bucket/key-or-prefix or local paths:
  local files/directories -> s3://bucket/archive.zip
  s3://bucket/prefix/     -> archive.zip (local) or s3://bucket/archive.zip
  local                   -> local.zip
A source ending in "/" is a prefix (directory); s3://bucket/name is the object "name" if it
exists, else the prefix "name/". Directories are walked recursively, in sorted order.

S3 connection (flags override the AWS environment variables):
  --endpoint URL            S3 endpoint (AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL); implies path-style
  --region NAME             region (AWS_REGION, AWS_DEFAULT_REGION)
  --profile NAME            shared-config profile (AWS_PROFILE); default: the AWS default credential chain
  --path-style              path-style addressing (S3_FORCE_PATH_STYLE=1)
  --expected-bucket-owner ID|BUCKET=ID
                            every request requires the bucket to belong to this account (S3
                            refuses with 403 otherwise); BUCKET=ID for one bucket, repeatable

Archive:
  --method store|deflate    compression method (default store)
  --level 0-9               deflate level (default 6)
  --zip64 auto|always|never Zip64 records (default auto: only where a limit needs them)
  --duplicates error|rename|allow   two entries with one name (default error)
  --password-env NAME       AES-256 (WinZip AE-2) password from environment variable NAME
  --password-file FILE      AES-256 password from the first line of FILE
                            (a password is never accepted as a command-line argument)
Names:
  --names relative|full|basename    entry names: relative to the directory or prefix given
                            (default), the whole key/path, or the last segment only
  --strip-prefix STR        name = full key/path with STR removed from its start
  --on-missing error|skip   a missing source key or path (default error)
Local sources:
  Symlinks in directories are stored as links (their targets are not read); a link pointing
  outside the source tree is refused. Loops (a link to a parent) are never walked twice.
  --follow-symlinks         archive what links point to instead (targets inside the tree only)
  --allow-outside-symlinks  store or follow links that lead outside the source tree

Upload and read tuning (memory: about concurrency x part size, plus the prefetch window):
  --part-size SIZE          multipart part size, e.g. 16MiB, 64M (default: planned from the
                            predicted size, 8 MiB growing when unknown)
  --equal-parts             every part but the last the same size (Cloudflare R2)
  --concurrency N           parts uploaded at once (default 4)
  --prefetch-objects N      S3 objects read ahead (S3 sources)
  --prefetch-bytes SIZE     bytes read ahead (S3 sources)
  --assembly MODE           S3 -> S3: auto (default), copy (S3 copies large stored members
                            itself; only headers, small members and up to 5 MiB per copied
                            member are uploaded) or stream
  --copy-min-size SIZE      smallest member S3 copies (default 5MiB where the server computes
                            checksums, as AWS S3; 16MiB where it does not; at least 5MiB)

Destination object (S3):
  --content-type TYPE       default application/zip
  --content-disposition V   e.g. 'attachment; filename="export.zip"'
  --cache-control V
  --storage-class CLASS     e.g. STANDARD_IA
  --sse AES256|aws:kms      server-side encryption
  --sse-kms-key-id ID
  --metadata k=v            user metadata (repeatable)
  --tag k=v                 object tag (repeatable)

Modes and output:
  --dry-run                 list the entries, predicted size, Zip64 need and part plan; write nothing
  --force                   replace a local destination that is not a ZIP archive; cleanup:
                            allow --older-than under 1h (in-flight uploads of other jobs)
  --manifest FILE           write a JSON manifest (source, name, size, CRC-32, offset per entry)
  --jobs FILE               batch: a JSON array or NDJSON of {"src", "dest", "options"}; options
                            take the flag names above (e.g. {"method": "deflate", "part-size": "16MiB"}),
                            flags given here are defaults. One result line per job; failed jobs
                            do not stop the others.
  --parallel N              jobs run at once in batch mode (default 2)
  --older-than AGE          cleanup: age such as 24h, 90m, 7d
Distributed archives (S3 -> S3, docs/distributed.md):
  --workers N               plan, run the segments in N local processes, finalize
  --plan s3://B/K           where the plan is written (default: next to the archive, DEST.plan.json)
  --segment-size SIZE       archive bytes per segment (default 4GiB)
  --keep-plan               finalize/abort keep the plan's files
  -q, --quiet               no progress or log lines (stderr)
  --json                    machine-readable summary on stdout
  -h, --help                this help
  -V, --version             the version

Verify (reads the archive where it lies, with ranged GETs; nothing is downloaded whole):
  --expect s3://b/prefix/   the sources it was made from: each must be in it with its size
                            (and CRC-32 where S3 keeps one); nothing else may be
  --manifest FILE           with verify: the manifest an earlier run wrote, as the expectation
  --deep                    also read every member once and recompute its CRC-32 (progress bar);
                            AES members are authenticated with --password-env/--password-file
  --local-headers all|sample|none   local headers compared with the directory (default all)

Progress goes to stderr (a bar on a terminal, log lines otherwise); the summary to stdout.
SIGINT/SIGTERM abort cleanly: the multipart upload is aborted and no partial output is left.

${EXIT_CODES_HELP}
`;
