// "Try a sample" buttons, listed in samples/samples.json: real MRI slices from
// the test split of Nickparvar's dataset (CC0; ones without a near copy among
// the training images). Each entry's `kind` ("real", or "synthetic" for a
// generated image) labels its button.

/** Adds a button per sample to `buttons`; a click passes the sample as a File to `onFile`. */
export async function setupSamples({ box, buttons, onFile }) {
  const url = new URL('../samples/samples.json', import.meta.url);
  let list;
  try {
    const response = await fetch(url);
    if (!response.ok) return;
    list = await response.json();
  } catch {
    return; // no samples: the buttons stay hidden
  }
  for (const s of list.samples ?? []) {
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'sample-button';
    button.dataset.class = s.class;
    button.dataset.kind = s.kind ?? 'synthetic';
    button.textContent = `${s.class} (${s.kind ?? 'synthetic'})`;
    button.setAttribute('aria-label', `Classify a ${s.kind ?? 'synthetic'} sample (${s.source ?? 'no source given'}) whose true class is ${s.class}`);
    button.addEventListener('click', async () => {
      button.disabled = true;
      try {
        const response = await fetch(new URL(s.file, url));
        if (!response.ok) throw new Error(`HTTP ${response.status}`);
        const blob = await response.blob();
        onFile(new File([blob], s.file, { type: blob.type }));
      } catch (e) {
        onFile(null, `could not load the sample ${s.file}: ${e.message}`);
      } finally {
        button.disabled = false;
      }
    });
    buttons.append(button);
  }
  box.hidden = false;
}
