// The transcript: clicks on [n] markers open the source; the view follows the conversation.
element.addEventListener('click', (ev) => {
  const el = ev.target.closest('[data-cite]');
  if (!el || !element.contains(el)) return;
  ev.preventDefault();
  ev.stopPropagation();
  trigger('click', {turn: Number(el.dataset.turn), n: Number(el.dataset.n)});
});
// Follow the conversation while the reader is at its end: the bottom while an answer
// streams, the top of the answer once it is complete.
const box = element.closest('.html-container') || element.parentElement;
let follow = true;
box.addEventListener('scroll', () => {
  follow = box.scrollHeight - box.scrollTop - box.clientHeight < 120;
}, {passive: true});
watch('value', () => {
  const turns = element.querySelectorAll('.turn');
  if (!turns.length) { follow = true; return; }
  const last = turns[turns.length - 1];
  const state = last.dataset.state;
  if (state === 'queued') follow = true;
  if (!follow) return;
  if (state === 'queued' || state === 'running' || state === 'checking') {
    box.scrollTop = box.scrollHeight;
  } else {
    const top = last.getBoundingClientRect().top - box.getBoundingClientRect().top + box.scrollTop - 8;
    box.scrollTop = Math.min(top, box.scrollHeight);
    follow = false;
  }
});
