// The raw load generator for bench/generate: N chat requests with plain fetch, C in flight.
const [url, n, c] = [process.argv[2], Number(process.argv[3]), Number(process.argv[4])];
let next = 0;
await Promise.all(
  Array.from({ length: c }, async () => {
    while (next < n) {
      const i = next++;
      const res = await fetch(`${url}/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({
          model: "bench/model",
          messages: [
            { role: "system", content: "s" },
            { role: "user", content: [{ type: "text", text: `What is ${i} + ${i}? Explain step by step.` }] },
          ],
          max_tokens: 16,
          seed: i,
        }),
      });
      await res.json();
    }
  }),
);
