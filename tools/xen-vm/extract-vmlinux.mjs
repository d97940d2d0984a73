// Pulls the ELF vmlinux out of a bzImage whose payload is XZ (Debian's), as
// the kernel's scripts/extract-vmlinux does: find the XZ stream magic, let xz
// decompress one stream, check the result is ELF.
//   node extract-vmlinux.mjs BZIMAGE OUT
import { readFileSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';

const [bzImage, out] = process.argv.slice(2);
if (!bzImage || !out) {
  console.error('usage: extract-vmlinux.mjs BZIMAGE OUT');
  process.exit(2);
}
const image = readFileSync(bzImage);
const XZ_MAGIC = Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]);
for (let at = image.indexOf(XZ_MAGIC); at >= 0; at = image.indexOf(XZ_MAGIC, at + 1)) {
  const xz = spawnSync('xz', ['-dc', '--single-stream'], { input: image.subarray(at), maxBuffer: 1 << 30 });
  const elf = xz.stdout;
  if (elf && elf.length > 4 && elf.readUInt32BE(0) === 0x7f454c46) {
    writeFileSync(out, elf);
    console.log(`vmlinux: ${elf.length} bytes from XZ stream at offset ${at}`);
    process.exit(0);
  }
}
console.error(`${bzImage}: no XZ stream holding an ELF image`);
process.exit(1);
