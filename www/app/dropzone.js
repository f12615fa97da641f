// Ways to add scans: the drop zone is a button that opens the file picker
// (keyboard and touch), files dropped anywhere on the page, and pasted images.

const hasFiles = (e) => [...(e.dataTransfer?.types ?? [])].includes('Files');

/** Calls `onFiles(File[])` for every way of adding scans. */
export function setupInput({ zone, input, onFiles }) {
  zone.addEventListener('click', () => input.click());
  input.addEventListener('change', () => {
    const files = [...input.files];
    input.value = '';
    if (files.length) onFiles(files);
  });

  // Dropping anywhere must not navigate away to the file.
  document.addEventListener('dragover', (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    e.dataTransfer.dropEffect = 'copy';
    zone.classList.add('dragging');
  });
  document.addEventListener('dragleave', (e) => {
    if (!e.relatedTarget) zone.classList.remove('dragging');
  });
  document.addEventListener('drop', (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    zone.classList.remove('dragging');
    const files = [...e.dataTransfer.files];
    if (files.length) onFiles(files);
  });

  // A pasted screenshot arrives as "image.png": give each one its own name.
  let pasted = 0;
  document.addEventListener('paste', (e) => {
    const files = [...(e.clipboardData?.files ?? [])];
    if (!files.length) return;
    e.preventDefault();
    onFiles(files.map((f) => {
      if (f.name && f.name !== 'image.png') return f;
      const ext = (f.type.split('/')[1] ?? 'png').replace('jpeg', 'jpg');
      return new File([f], `pasted-${++pasted}.${ext}`, { type: f.type });
    }));
  });
}
