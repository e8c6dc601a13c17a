// Uploads by Pithos's block protocol, in the browser (spec §1.2):
//
// 1. cut the file into the container's blocks (X-Container-Block-Size, 4 MiB) and name
//    each by the SHA-256 of its bytes without their trailing zero bytes (WebCrypto);
// 2. PUT the hashmap ({"bytes", "hashes"}) as the object; 409 lists the blocks the
//    store lacks;
// 3. send each of those (POST <container>?update, application/octet-stream), then PUT
//    the hashmap again: 201.
//
// The store keeps a block it was sent even if the upload stops, so an upload resumes
// after a reload or a lost connection by doing the same again: only what is still
// missing goes. A file of one block or less is one plain PUT.

import { t } from "./i18n.js";

const RETRIES = 5; // per block, on a lost connection, waiting 1, 2, 4, 8, 16 s

export function canHash() {
  // WebCrypto exists only in a secure context (HTTPS, or loopback).
  return Boolean(globalThis.crypto && crypto.subtle);
}

function hex(buffer) {
  return Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, "0")).join("");
}

// A block's length without its trailing zero bytes (which Pithos does not hash).
function contentLength(bytes) {
  let end = bytes.length;
  while (end > 0 && bytes[end - 1] === 0) end -= 1;
  return end;
}

export async function blockHash(buffer) {
  const bytes = new Uint8Array(buffer);
  return hex(await crypto.subtle.digest("SHA-256", bytes.subarray(0, contentLength(bytes))));
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// Progress goes to `onProgress({phase, done, total})`: phase "hashing" (bytes read),
// then "sending" (bytes of the missing blocks sent), "retrying" (with `wait`, in seconds)
// while the connection is lost. Answers how many blocks were sent.
export async function uploadFile(store, container, name, file, onProgress = () => {}, { signal } = {}) {
  const { blockSize, blockHash: algorithm } = await store.container(container);
  if (file.size <= blockSize || !canHash() || algorithm !== "sha256") {
    onProgress({ phase: "sending", done: 0, total: file.size });
    await store.put(container, name, file);
    onProgress({ phase: "sending", done: file.size, total: file.size });
    return { sent: file.size ? 1 : 0, blocks: 1 };
  }
  const hashes = [];
  for (let start = 0; start < file.size; start += blockSize) {
    if (signal && signal.aborted) throw signal.reason;
    hashes.push(await blockHash(await file.slice(start, start + blockSize).arrayBuffer()));
    onProgress({ phase: "hashing", done: Math.min(start + blockSize, file.size), total: file.size });
  }
  const hashmap = JSON.stringify({ bytes: file.size, hashes });
  const putMap = () =>
    store.send("PUT", store.url(container, name, "hashmap&format=json"), {
      headers: { "Content-Type": file.type || "application/octet-stream" },
      body: hashmap,
      accept: [409],
    });
  let answer = await putMap();
  if (answer.status !== 409) {
    onProgress({ phase: "sending", done: 0, total: 0 });
    return { sent: 0, blocks: hashes.length };
  }
  const missing = new Set(await answer.json());
  const indices = hashes.map((h, i) => (missing.has(h) ? i : -1)).filter((i) => i >= 0);
  const unique = [...new Map(indices.map((i) => [hashes[i], i])).values()];
  const total = unique.reduce((sum, i) => sum + Math.min(blockSize, file.size - i * blockSize), 0);
  let done = 0;
  onProgress({ phase: "sending", done, total });
  for (const index of unique) {
    const block = file.slice(index * blockSize, (index + 1) * blockSize);
    await sendBlock(store, container, block, signal, (wait) => onProgress({ phase: "retrying", done, total, wait }));
    done += block.size;
    onProgress({ phase: "sending", done, total });
  }
  answer = await putMap();
  if (answer.status === 409) throw new Error(t("upload.lacks"));
  return { sent: unique.length, blocks: hashes.length };
}

// `onRetry(seconds)` says that the connection was lost and when the next try goes.
async function sendBlock(store, container, block, signal, onRetry = () => {}) {
  for (let attempt = 0; ; attempt += 1) {
    if (signal && signal.aborted) throw signal.reason;
    try {
      return await store.send("POST", store.url(container, "", "update"), {
        headers: { "Content-Type": "application/octet-stream" },
        body: block,
      });
    } catch (error) {
      // fetch throws a TypeError when the connection is lost; the API's refusals are
      // ApiErrors, which retrying would not change.
      if (!(error instanceof TypeError) || attempt >= RETRIES) throw error;
      onRetry(2 ** attempt);
      await sleep(1000 * 2 ** attempt);
    }
  }
}
