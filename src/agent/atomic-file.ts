import { closeSync, fsyncSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs'
import path from 'node:path'

/**
 * Replaces a file so that a crash at any moment leaves either the old
 * content or the new, never a mix: write a temporary file beside it, fsync
 * it, rename it over the old one, then fsync the directory so the rename
 * itself is durable.
 *
 * The temporary file is created, never reused (O_CREAT | O_EXCL, with its
 * mode from the start): a symlink or file planted at its name is removed
 * first (unlink does not follow symlinks), and should one appear again in
 * between, the open fails instead of writing through it.
 */
export function writeFileAtomic(file: string, data: string | Uint8Array, mode = 0o644): void {
  const tmp = `${file}.tmp-${process.pid}`
  try {
    unlinkSync(tmp)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
  const fd = openSync(tmp, 'wx', mode)
  try {
    const bytes = typeof data === 'string' ? Buffer.from(data) : data
    let off = 0
    while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off)
    fsyncSync(fd)
  } catch (err) {
    closeSync(fd)
    unlinkSync(tmp)
    throw err
  }
  closeSync(fd)
  renameSync(tmp, file)
  const dir = openSync(path.dirname(file), 'r')
  try {
    fsyncSync(dir)
  } finally {
    closeSync(dir)
  }
}
