import { describe, expect, it } from "vitest";
import { normalizeQuestionText, Question, questionId, sha256Hex, Trace } from "../../core/records/index.ts";

const IMG_A = sha256Hex("image a");
const IMG_B = sha256Hex("image b");

describe("question ids", () => {
  it("gives the same id to the same question from two sources despite spacing and boilerplate", () => {
    const a = questionId("<image>\nHow many  red circles are there?", [IMG_A]);
    const b = questionId(
      "How many red circles are there? Answer the question using a single word or phrase.",
      [IMG_A],
    );

    expect(a).toBe(b);
  });

  it("gives different ids to the same text over different images", () => {
    expect(questionId("What is shown?", [IMG_A])).not.toBe(questionId("What is shown?", [IMG_B]));
  });

  it("depends on image order", () => {
    expect(questionId("Compare.", [IMG_A, IMG_B])).not.toBe(questionId("Compare.", [IMG_B, IMG_A]));
  });

  it("keeps letter case, because variable names are case-sensitive", () => {
    expect(questionId("Find X.", [])).not.toBe(questionId("Find x.", []));
  });

  it("normalizes unicode compatibility forms", () => {
    expect(normalizeQuestionText("ｘ＋１")).toBe("x+1");
  });
});

describe("record schemas", () => {
  it("accepts a well-formed question and rejects an unknown field", () => {
    const q = {
      id: questionId("What is 2+2?", []),
      source: "s",
      domain: "text_math",
      question: "What is 2+2?",
      images: [],
      answer: "4",
      answerType: "numeric",
    };

    expect(Question.safeParse(q).success).toBe(true);
    expect(Question.safeParse({ ...q, extra: 1 }).success).toBe(false);
  });

  it("rejects a trace with a negative sample index", () => {
    const t = {
      questionId: IMG_A,
      sampleIndex: -1,
      model: "m",
      messages: [{ role: "user", content: "hi" }],
      response: "x",
      finishReason: "stop",
      usage: { promptTokens: 1, completionTokens: 1 },
    };

    expect(Trace.safeParse(t).success).toBe(false);
    expect(Trace.safeParse({ ...t, sampleIndex: 0 }).success).toBe(true);
  });
});
