// Reads a ZIP archive with the JDK's own ZIP implementation and prints one JSON object per entry.
// Used by @zipstream/interop (src/index.ts). Written for Java 17, single file, no dependencies.
//
// Usage: java ZipCheck.java <zipfile|stream> <archive> <hash-all:true|false> [names-file]
//   zipfile: java.util.zip.ZipFile (central directory, random access)
//   stream:  java.util.zip.ZipInputStream (local headers and data descriptors, front to back)
// Every entry's data is read to the end and its CRC-32 compared with the recorded one, because
// ZipFile does not check CRCs itself. Entries are hashed (SHA-256) when hash-all is true or their
// name is a line of names-file (UTF-8).
import java.io.*;
import java.nio.charset.StandardCharsets;
import java.nio.file.*;
import java.security.MessageDigest;
import java.util.*;
import java.util.zip.*;

public class ZipCheck {
  static final byte[] BUF = new byte[1 << 16];

  public static void main(String[] args) throws Exception {
    String mode = args[0];
    String archive = args[1];
    boolean hashAll = Boolean.parseBoolean(args[2]);
    Set<String> toHash = namesToHash(args);
    PrintStream out = stdout();
    if (mode.equals("zipfile")) {
      try (ZipFile zf = new ZipFile(new File(archive), StandardCharsets.UTF_8)) {
        out.println("{\"comment\":" + json(zf.getComment()) + ",\"count\":" + zf.size() + "}");
        Enumeration<? extends ZipEntry> en = zf.entries();
        while (en.hasMoreElements()) {
          ZipEntry e = en.nextElement();
          boolean hash = hashAll || toHash.contains(e.getName());
          try (InputStream in = zf.getInputStream(e)) {
            emit(out, e, in, hash, e.getCrc(), e.getSize());
          }
        }
      }
    } else {
      try (ZipInputStream zin = new ZipInputStream(new BufferedInputStream(new FileInputStream(archive), 1 << 16), StandardCharsets.UTF_8)) {
        ZipEntry e;
        while ((e = zin.getNextEntry()) != null) {
          boolean hash = hashAll || toHash.contains(e.getName());
          // ZipInputStream checks CRC and sizes itself at the end of each entry (it throws
          // "invalid entry CRC"/"invalid entry size"); the values are known only after reading.
          emit(out, e, zin, hash, -1, -1);
        }
      }
    }
    out.flush();
  }

  static void emit(PrintStream out, ZipEntry e, InputStream in, boolean hash, long expectCrc, long expectSize) throws Exception {
    CRC32 crc = new CRC32();
    MessageDigest md = hash ? MessageDigest.getInstance("SHA-256") : null;
    long n = 0;
    int r;
    while ((r = in.read(BUF)) > 0) {
      crc.update(BUF, 0, r);
      if (md != null) md.update(BUF, 0, r);
      n += r;
    }
    if (expectCrc >= 0 && crc.getValue() != expectCrc)
      throw new ZipException("CRC mismatch in " + e.getName() + ": recorded " + Long.toHexString(expectCrc) + ", computed " + Long.toHexString(crc.getValue()));
    if (expectSize >= 0 && n != expectSize)
      throw new ZipException("size mismatch in " + e.getName() + ": recorded " + expectSize + ", read " + n);
    StringBuilder sb = new StringBuilder();
    sb.append("{\"name\":").append(json(e.getName()));
    sb.append(",\"dir\":").append(e.isDirectory());
    sb.append(",\"size\":").append(n);
    sb.append(",\"mtime\":").append(e.getLastModifiedTime() == null ? "null" : Long.toString(e.getLastModifiedTime().toMillis()));
    sb.append(",\"comment\":").append(json(e.getComment()));
    if (md != null) sb.append(",\"sha256\":\"").append(hex(md.digest())).append('"');
    sb.append('}');
    out.println(sb);
  }

  /** Names listed in the optional names file (4th argument), one per line. Shared with CommonsCheck. */
  static Set<String> namesToHash(String[] args) throws IOException {
    Set<String> toHash = new HashSet<>();
    if (args.length > 3) toHash.addAll(Files.readAllLines(Paths.get(args[3]), StandardCharsets.UTF_8));
    return toHash;
  }

  /** Buffered UTF-8 standard output. */
  static PrintStream stdout() throws IOException {
    return new PrintStream(new BufferedOutputStream(new FileOutputStream(FileDescriptor.out), 1 << 16), false, "UTF-8");
  }

  static String hex(byte[] b) {
    StringBuilder sb = new StringBuilder();
    for (byte x : b) sb.append(String.format("%02x", x & 0xff));
    return sb.toString();
  }

  static String json(String s) {
    if (s == null) return "null";
    StringBuilder sb = new StringBuilder("\"");
    for (int i = 0; i < s.length(); i++) {
      char c = s.charAt(i);
      if (c == '"' || c == '\\') sb.append('\\').append(c);
      else if (c < 0x20) sb.append(String.format("\\u%04x", (int) c));
      else sb.append(c);
    }
    return sb.append('"').toString();
  }
}
