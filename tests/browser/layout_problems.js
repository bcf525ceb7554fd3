// What is wrong with the layout of the page it runs in, as readable lines (none when it
// holds): the page is wider than the window (and which elements stick out), a visually-hidden
// element is not clipped away, or two visible form controls overlap. tests/browser/test_layout.py
// runs it with Playwright's page.evaluate.
() => {
  const width = window.innerWidth;
  const describe = (el) => {
    const parts = [];
    for (let node = el; node && node.nodeType === 1 && parts.length < 4; node = node.parentElement) {
      let part = node.tagName.toLowerCase();
      if (node.id) { parts.unshift(part + "#" + node.id); break; }
      if (node.getAttribute("name")) part += `[name="${node.getAttribute("name")}"]`;
      else if (node.classList.length) part += "." + [...node.classList].join(".");
      parts.unshift(part);
    }
    return parts.join(" > ");
  };
  const size = (r) => `${Math.round(r.width)}×${Math.round(r.height)}`;
  const box = (r) => `${Math.round(r.left)},${Math.round(r.top)} ${size(r)}`;
  const problems = [];

  const scrollWidth = document.documentElement.scrollWidth;
  if (scrollWidth > width) {
    // The elements that stick out past the window, unless a box that clips or scrolls holds
    // them. An absolutely positioned box is held only by its containing block (the nearest
    // positioned ancestor): the boxes in between do not clip it.
    const taken = (style) => style.position === "absolute" || style.position === "fixed";
    const clipped = (el) => {
      let outOfFlow = taken(getComputedStyle(el));
      for (let up = el.parentElement; up && up !== document.documentElement; up = up.parentElement) {
        const style = getComputedStyle(up);
        if (outOfFlow && style.position === "static") continue;
        if (style.overflowX !== "visible" && up.getBoundingClientRect().right <= width) return true;
        outOfFlow = taken(style);
      }
      return false;
    };
    const wide = [...document.body.querySelectorAll("*")].filter((el) => {
      const r = el.getBoundingClientRect();
      return r.width > 0 && r.right > width + 0.5 && !clipped(el);
    });
    const deepest = wide.filter((el) => !wide.some((other) => other !== el && el.contains(other)));
    problems.push(`page is ${scrollWidth}px wide in a ${width}px window; sticking out: ` +
      deepest.slice(0, 6).map((el) => `${describe(el)} (right edge ${Math.round(el.getBoundingClientRect().right)})`).join("; "));
  }

  // Screen-reader-only text is clipped to a 1px box taken out of the flow, wherever it is.
  for (const el of document.querySelectorAll(".visually-hidden")) {
    const style = getComputedStyle(el);
    const r = el.getBoundingClientRect();
    if (style.position !== "absolute" || r.width > 1 || r.height > 1 || style.overflow !== "hidden"
        || (style.clip === "auto" && style.clipPath === "none")) {
      problems.push(`${describe(el)} is not visually hidden (position ${style.position}, ` +
        `${size(r)}, overflow ${style.overflow}, clip ${style.clip})`);
    }
  }

  const controls = [...document.querySelectorAll("input, select, textarea, button")].filter((el) => {
    if (el.type === "hidden" || el.closest("[hidden]")) return false;
    const closed = el.closest("details:not([open])");
    if (closed && !(el.closest("summary") && el.closest("summary").parentElement === closed)) return false;
    if (!el.checkVisibility({ checkOpacity: true, checkVisibilityCSS: true })) return false;
    const r = el.getBoundingClientRect();
    return r.width > 1 && r.height > 1;
  });
  const rects = controls.map((el) => el.getBoundingClientRect());
  for (let i = 0; i < controls.length; i++) {
    for (let j = i + 1; j < controls.length; j++) {
      const a = rects[i], b = rects[j];
      const across = Math.min(a.right, b.right) - Math.max(a.left, b.left);
      const down = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
      if (across > 1 && down > 1) {
        problems.push(`${describe(controls[i])} [${box(a)}] overlaps ${describe(controls[j])} [${box(b)}]`);
      }
    }
  }
  return problems;
}
