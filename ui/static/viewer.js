// The source viewer: after a new source is shown, scroll its <mark> into view.
const reveal = () => {
  let tries = 0;
  const go = () => {
    const m = element.querySelector('mark');
    if (!m) return;
    if (m.offsetParent === null && tries++ < 60) { setTimeout(go, 50); return; }
    const box = element.querySelector('.sv-body');
    if (box) box.scrollTop = Math.max(0, m.offsetTop - box.clientHeight / 3);
    const r = element.getBoundingClientRect();
    if (r.top < 0 || r.top > window.innerHeight) element.scrollIntoView({block: 'start', behavior: 'smooth'});
  };
  go();
};
watch('value', reveal);
