// lightnb ParamsForm: inputs for a component's attributes; "Apply" sends what was typed to the kernel,
// which validates it and sets the values on the running app. The kernel writes every trait.

function show(value) {
  return value === null || value === undefined ? "" : String(value);
}

function render({ model, el }) {
  const inputs = new Map(); // name -> {input, read(), write(value), error, current, edited}
  const status = h("div", { class: "lnb-status" });
  const title = h("div", { class: "lnb-title" });
  const rows = h("div", {});
  const apply = h("button", { class: "lnb-btn", type: "submit" }, "Apply");
  const form = h("form", { class: "lnb-form" }, title, rows, apply, status);
  let gone = false;
  const kernel = watchKernel(model, el, () => {
    gone = true;
    apply.disabled = true;
    apply.title = "the kernel of this form is gone";
    status.textContent = "The kernel of this form restarted or stopped: its app is gone, nothing can be applied.";
    status.className = "lnb-status lnb-status-error";
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const values = {};
    for (const [name, entry] of inputs) values[name] = entry.read();
    // What was typed stays in the fields until the kernel says it was applied (an error keeps it beside
    // its message, to be corrected).
    kernel.send({ type: "submit", values });
  });
  el.append(form);

  function build() {
    rows.replaceChildren();
    inputs.clear();
    for (const field of model.get("fields") || []) {
      let input, read, write;
      if (field.kind === "bool") {
        input = h("input", { type: "checkbox" });
        read = () => input.checked;
        write = (value) => { input.checked = Boolean(value); };
      } else if (field.kind === "choice") {
        input = h("select", {});
        field.choices.forEach((choice, index) => input.append(h("option", { value: String(index) }, show(choice))));
        if (field.nullable) input.append(h("option", { value: "" }, "(none)"));
        read = () => (input.value === "" ? null : field.choices[Number(input.value)]);
        write = (value) => {
          const index = field.choices.findIndex((choice) => choice === value);
          input.value = index >= 0 ? String(index) : "";
        };
      } else {
        input = h("input", { type: "text", inputmode: field.kind === "str" ? "text" : "decimal" });
        read = () => input.value;
        write = (value) => { input.value = show(value); };
      }
      const bounds = [field.min != null ? `≥ ${field.min}` : null, field.max != null ? `≤ ${field.max}` : null]
        .filter(Boolean).join(", ");
      const entry = { input, read, write, edited: false,
        error: h("span", { class: "lnb-field-error" }), current: h("span", { class: "lnb-current" }) };
      input.addEventListener("input", () => { entry.edited = true; });
      input.addEventListener("change", () => { entry.edited = true; });
      rows.append(h("label", { class: "lnb-field" },
        h("span", { title: field.kind }, field.name + (bounds ? ` (${bounds})` : "")), input,
        h("span", {}, entry.current, " ", entry.error)));
      inputs.set(field.name, entry);
    }
    update(true);
  }

  let appliedSeq = (model.get("status") || {}).seq;
  function update(initial = false) {
    const values = model.get("values") || {};
    const errors = model.get("errors") || {};
    for (const [name, entry] of inputs) {
      if (initial || !entry.edited) entry.write(values[name]);
      entry.current.textContent = `now: ${show(values[name])}`;
      entry.error.textContent = errors[name] || "";
    }
    const state = model.get("status") || {};
    if (gone) return;
    if (state.state === "applied" && state.seq !== appliedSeq) {
      appliedSeq = state.seq;
      for (const [name, entry] of inputs) {
        entry.edited = false;
        entry.write(values[name]);
      }
    }
    status.textContent = state.message || "";
    status.className = `lnb-status lnb-status-${state.state || "idle"}`;
    title.textContent = model.get("title") || "";
  }

  const onUpdate = () => update();
  model.on("change:fields", build);
  for (const event of ["change:values", "change:errors", "change:status", "change:title"]) model.on(event, onUpdate);
  build();
  return () => {
    kernel.stop();
    model.off("change:fields", build);
    for (const event of ["change:values", "change:errors", "change:status", "change:title"]) model.off(event, onUpdate);
  };
}

export default { render };
