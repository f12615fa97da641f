// The batch queue: scans are classified one at a time, in the order they were
// added, so the worker is never flooded and the page stays responsive. Cancel
// drops every scan still waiting and aborts the one running (its `run` gets
// an AbortSignal; a run that ends with kind `cancelled` is marked cancelled).
//
// A record is what the table and the exports show for one scan (file name,
// never image data): { seq, file, status: queued|running|ok|error|cancelled,
// label, topProbability, refer, probabilities, backend, ... }.

export class Queue {
  /** Every record of the session, in the order added. */
  records = [];
  #waiting = [];
  #running = null;
  #seq = 0;
  #done = 0;

  /** `run(job, signal)` classifies { record, blob, frame } and fills the record; `onChange(record?)` redraws. */
  constructor({ run, onChange }) {
    this.run = run;
    this.onChange = onChange;
  }

  get waiting() { return this.#waiting.length; }
  get running() { return this.#running?.record ?? null; }
  get finished() { return this.#done; }

  /** Queues files (File or Blob with a name). */
  add(files) {
    for (const blob of files) {
      const record = { seq: ++this.#seq, file: blob.name || `scan-${this.#seq}`, status: 'queued' };
      this.records.push(record);
      this.#waiting.push({ record, blob });
      this.onChange(record);
    }
    this.#pump();
  }

  /** Classifies `record`'s file again at another frame (multi-frame DICOM). */
  again(record, blob, frame) {
    record.status = 'queued';
    this.#waiting.push({ record, blob, frame });
    this.onChange(record);
    this.#pump();
  }

  /**
   * Drops every waiting scan and aborts the running one; returns { dropped,
   * stopped } (stopped: the running record, or null). A scan whose result
   * had already arrived keeps it.
   */
  cancel() {
    const dropped = this.#waiting.splice(0);
    for (const { record } of dropped) {
      record.status = 'cancelled';
      this.onChange(record);
    }
    const stopped = this.#running?.record ?? null;
    this.#running?.controller.abort();
    this.onChange();
    return { dropped: dropped.length, stopped };
  }

  async #pump() {
    if (this.#running) return;
    while (this.#waiting.length) {
      const job = this.#waiting.shift();
      const controller = new AbortController();
      this.#running = { ...job, controller };
      job.record.status = 'running';
      this.onChange(job.record);
      try {
        await this.run(job, controller.signal);
        job.record.status = 'ok';
      } catch (e) {
        if (e?.kind === 'cancelled') job.record.status = 'cancelled';
        else Object.assign(job.record, { status: 'error', error: e?.message ?? String(e), errorKind: e?.kind ?? 'internal' });
      }
      this.#done++;
      this.#running = null;
      this.onChange(job.record, true);
      // Let the page paint and handle input between scans.
      await new Promise((resolve) => setTimeout(resolve, 0));
    }
    this.onChange();
  }
}
