// Reads a ZIP archive with Apache Commons Compress (Debian package libcommons-compress-java) and
// prints one JSON object per entry. Used by @zipstream/interop (src/index.ts). Java 17; compiled
// together with ZipCheck.java (its JSON and hex helpers), the Commons Compress jar on the class path.
//
// Usage: java -cp commons-compress.jar:<dir> CommonsCheck <zipfile|stream> <archive> <hash-all> [names-file] [--list-only]
//   zipfile: org.apache.commons.compress.archivers.zip.ZipFile (central directory, random access)
//   stream:  ZipArchiveInputStream (local headers and data descriptors, front to back), with its
//            defaults: it refuses stored entries that have a data descriptor, as most callers
//            leave it.
// Every entry's data is read to the end and its CRC-32 compared with the recorded one (Commons
// Compress does not check CRCs itself). --list-only lists without reading data (encrypted archives,
// which Commons Compress cannot decrypt).
import java.io.*;
import java.nio.charset.StandardCharsets;
import java.nio.file.*;
import java.security.MessageDigest;
import java.util.*;
import java.util.zip.CRC32;
import java.util.zip.ZipException;
import org.apache.commons.compress.archivers.zip.ZipArchiveEntry;
import org.apache.commons.compress.archivers.zip.ZipArchiveInputStream;
import org.apache.commons.compress.archivers.zip.ZipFile;

public class CommonsCheck {
  static final byte[] BUF = ZipCheck.BUF;

  public static void main(String[] args) throws Exception {
    String mode = args[0];
    String archive = args[1];
    boolean hashAll = Boolean.parseBoolean(args[2]);
    Set<String> toHash = ZipCheck.namesToHash(args);
    boolean listOnly = args.length > 4 && args[4].equals("--list-only");
    PrintStream out = ZipCheck.stdout();
    if (mode.equals("zipfile")) {
      try (ZipFile zf = new ZipFile(new File(archive), "UTF-8")) {
        List<ZipArchiveEntry> all = Collections.list(zf.getEntries());
        out.println("{\"count\":" + all.size() + "}");
        for (ZipArchiveEntry e : all) {
          boolean hash = hashAll || toHash.contains(e.getName());
          if (listOnly || e.isDirectory()) {
            emit(out, e, null, false, e.getCrc(), e.getSize(), true);
            continue;
          }
          if (!zf.canReadEntryData(e)) throw new ZipException("cannot read the data of " + e.getName());
          try (InputStream in = zf.getInputStream(e)) {
            emit(out, e, in, hash, e.getCrc(), e.getSize(), true);
          }
        }
      }
    } else {
      try (ZipArchiveInputStream zin = new ZipArchiveInputStream(new BufferedInputStream(new FileInputStream(archive), 1 << 16), "UTF-8")) {
        ZipArchiveEntry e;
        while ((e = zin.getNextZipEntry()) != null) {
          boolean hash = hashAll || toHash.contains(e.getName());
          if (!zin.canReadEntryData(e)) throw new ZipException("cannot read the data of " + e.getName());
          // Sizes and CRC of an entry with a data descriptor are known only once its data is read;
          // the entry object is updated then, so they are compared after reading (-2: later).
          emit(out, e, zin, hash, -2, -2, false);
        }
      }
    }
    out.flush();
  }

  static void emit(PrintStream out, ZipArchiveEntry e, InputStream in, boolean hash, long expectCrc, long expectSize, boolean central) throws Exception {
    CRC32 crc = new CRC32();
    MessageDigest md = hash ? MessageDigest.getInstance("SHA-256") : null;
    long n = 0;
    if (in != null) {
      int r;
      while ((r = in.read(BUF)) > 0) {
        crc.update(BUF, 0, r);
        if (md != null) md.update(BUF, 0, r);
        n += r;
      }
      if (expectCrc == -2) expectCrc = e.getCrc();
      if (expectSize == -2) expectSize = e.getSize();
      if (!e.isDirectory() && expectCrc >= 0 && crc.getValue() != expectCrc)
        throw new ZipException("CRC mismatch in " + e.getName() + ": recorded " + Long.toHexString(expectCrc) + ", computed " + Long.toHexString(crc.getValue()));
      if (expectSize >= 0 && n != expectSize)
        throw new ZipException("size mismatch in " + e.getName() + ": recorded " + expectSize + ", read " + n);
    } else {
      n = e.isDirectory() ? 0 : e.getSize();
    }
    StringBuilder sb = new StringBuilder();
    sb.append("{\"name\":").append(ZipCheck.json(e.getName()));
    sb.append(",\"dir\":").append(e.isDirectory());
    sb.append(",\"size\":").append(n);
    sb.append(",\"mtime\":").append(e.getLastModifiedTime() == null ? "null" : Long.toString(e.getLastModifiedTime().toMillis()));
    // External attributes (Unix mode) and comments live in the central directory only.
    if (central) {
      sb.append(",\"comment\":").append(ZipCheck.json(e.getComment()));
      sb.append(",\"unix\":").append(e.getPlatform() == ZipArchiveEntry.PLATFORM_UNIX);
      sb.append(",\"mode\":").append(e.getUnixMode());
      sb.append(",\"crc\":").append(e.getCrc());
    }
    if (md != null) sb.append(",\"sha256\":\"").append(ZipCheck.hex(md.digest())).append('"');
    sb.append('}');
    out.println(sb);
  }
}
