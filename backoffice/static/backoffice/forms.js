// Small helpers for the back-office forms; each form works without them.
//
// * An input with data-fill-from="<id>" follows that input as a slug (data-fill-as="slug",
//   the default: "Sales orders" -> "sales-orders") or a key (data-fill-as="key":
//   "Shipped on" -> "shipped_on") until the person types in it; emptying it follows again.
// * In a [data-type-form], the select with data-type-switch shows the inputs whose
//   data-for-types lists the chosen type and hides (and disables, so they are not sent) the
//   others.
(() => {
  if (window.quaymasterForms) {
    window.quaymasterForms.init(document);
    return;
  }

  function words(text) {
    return text.normalize("NFKD").replace(/[\u0300-\u036f]/g, "").toLowerCase();
  }

  const STYLES = {
    slug: (text) => words(text).replace(/[^a-z0-9]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 63).replace(/-+$/, ""),
    key: (text) => words(text).replace(/[^a-z0-9]+/g, "_").replace(/^[^a-z]+|_+$/g, "").slice(0, 63).replace(/_+$/, ""),
  };

  function followName(target) {
    const source = document.getElementById(target.dataset.fillFrom);
    if (!source) return;
    const style = STYLES[target.dataset.fillAs] || STYLES.slug;
    let following = target.value === "" || target.value === style(source.value);
    source.addEventListener("input", () => {
      if (following) target.value = style(source.value);
    });
    target.addEventListener("input", () => {
      following = target.value === "";
    });
  }

  function switchTypes(form) {
    const select = form.querySelector("[data-type-switch]");
    if (!select) return;
    const show = () => {
      for (const part of form.querySelectorAll("[data-for-types]")) {
        const applies = part.dataset.forTypes.split(" ").includes(select.value);
        part.hidden = !applies;
        part.style.display = applies ? "" : "none";
        for (const input of part.querySelectorAll("input, select, textarea")) input.disabled = !applies;
      }
    };
    select.addEventListener("change", show);
    show();
  }

  function init(root) {
    for (const target of root.querySelectorAll("[data-fill-from]:not([data-followed])")) {
      target.dataset.followed = "";
      followName(target);
    }
    for (const form of root.querySelectorAll("[data-type-form]:not([data-switched])")) {
      form.dataset.switched = "";
      switchTypes(form);
    }
  }

  window.quaymasterForms = { init };
  init(document);
  document.addEventListener("htmx:load", (event) => init(event.detail.elt));
})();
