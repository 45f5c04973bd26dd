/**
 * What IAM checks for one S3 REST request (path-style), from S3's documented action mapping: the
 * `s3:` actions on the bucket or object ARN, with the condition keys S3 sets, and the KMS calls S3
 * makes on the caller's behalf when the bucket encrypts with a KMS key (SSE-KMS): reading an object
 * needs kms:Decrypt, writing one kms:GenerateDataKey, and a multipart upload both.
 */

export interface RequiredPermission {
  action: string;
  resource: string;
  context?: Record<string, string | string[]>;
}

export interface S3Call {
  method: string;
  bucket: string;
  /** Object key, decoded; undefined for a bucket-level request. */
  key?: string;
  query: Record<string, string | string[] | undefined>;
  headers: Record<string, string | string[] | undefined>;
}

export class UnmappedRequestError extends Error {
  override name = "UnmappedRequest";
}

const has = (q: S3Call["query"], name: string) => Object.hasOwn(q, name);
const one = (v: string | string[] | undefined) => (Array.isArray(v) ? v[0] : v);

/** The S3 action(s) of a request, or UnmappedRequestError for one this mapping does not know. */
export function s3Permissions(call: S3Call, kmsKeyArn?: string, region = "us-east-1"): RequiredPermission[] {
  const { method, bucket, key, query, headers } = call;
  const bucketArn = `arn:aws:s3:::${bucket}`;
  const out: RequiredPermission[] = [];
  const kms = (...actions: string[]) => {
    if (!kmsKeyArn) return;
    for (const action of actions)
      out.push({ action, resource: kmsKeyArn, context: { "kms:ViaService": `s3.${region}.amazonaws.com` } });
  };
  const unmapped = () =>
    new UnmappedRequestError(
      `the local S3 front door does not know which IAM action ${method} ${bucket}/${key ?? ""}?${Object.keys(query).join("&")} is`,
    );
  if (key === undefined || key === "") {
    if (method === "HEAD") out.push({ action: "s3:ListBucket", resource: bucketArn });
    else if (method === "GET" && has(query, "location"))
      out.push({ action: "s3:GetBucketLocation", resource: bucketArn });
    else if (method === "GET" && has(query, "versions"))
      out.push({ action: "s3:ListBucketVersions", resource: bucketArn });
    else if (method === "GET" && has(query, "uploads"))
      out.push({ action: "s3:ListBucketMultipartUploads", resource: bucketArn });
    else if (method === "GET" && Object.keys(query).every((k) => LIST_PARAMS.has(k)))
      out.push({
        action: "s3:ListBucket",
        resource: bucketArn,
        context: {
          "s3:prefix": one(query.prefix) ?? "",
          ...(one(query.delimiter) !== undefined ? { "s3:delimiter": one(query.delimiter)! } : {}),
          ...(one(query["max-keys"]) !== undefined ? { "s3:max-keys": one(query["max-keys"])! } : {}),
        },
      });
    else if (method === "PUT" && Object.keys(query).length === 0)
      out.push({ action: "s3:CreateBucket", resource: bucketArn });
    else throw unmapped();
    return out;
  }
  const objectArn = `${bucketArn}/${key}`;
  const versioned = one(query.versionId) !== undefined;
  switch (method) {
    case "GET":
    case "HEAD":
      if (has(query, "uploadId")) out.push({ action: "s3:ListMultipartUploadParts", resource: objectArn });
      else if (has(query, "tagging"))
        out.push({
          action: versioned ? "s3:GetObjectVersionTagging" : "s3:GetObjectTagging",
          resource: objectArn,
        });
      else if (has(query, "acl"))
        out.push({ action: versioned ? "s3:GetObjectVersionAcl" : "s3:GetObjectAcl", resource: objectArn });
      else {
        out.push({ action: versioned ? "s3:GetObjectVersion" : "s3:GetObject", resource: objectArn });
        if (method === "GET") kms("kms:Decrypt");
      }
      return out;
    case "PUT": {
      if (has(query, "tagging")) {
        out.push({ action: "s3:PutObjectTagging", resource: objectArn });
        return out;
      }
      if (has(query, "acl")) {
        out.push({ action: "s3:PutObjectAcl", resource: objectArn });
        return out;
      }
      out.push({ action: "s3:PutObject", resource: objectArn });
      const copySource = one(headers["x-amz-copy-source"]);
      if (copySource) {
        const source = decodeURIComponent(copySource.replace(/^\//, "").split("?")[0]!);
        out.push({ action: "s3:GetObject", resource: `arn:aws:s3:::${source}` });
        kms("kms:Decrypt");
      }
      if (one(headers["x-amz-tagging"])) out.push({ action: "s3:PutObjectTagging", resource: objectArn });
      // A part of a multipart upload was authorized (KMS included) when the upload was created.
      if (!has(query, "partNumber")) kms("kms:GenerateDataKey");
      return out;
    }
    case "POST":
      if (has(query, "uploads")) {
        out.push({ action: "s3:PutObject", resource: objectArn });
        kms("kms:GenerateDataKey", "kms:Decrypt");
        if (one(headers["x-amz-tagging"])) out.push({ action: "s3:PutObjectTagging", resource: objectArn });
      } else if (has(query, "uploadId")) out.push({ action: "s3:PutObject", resource: objectArn });
      else throw unmapped();
      return out;
    case "DELETE":
      if (has(query, "uploadId")) out.push({ action: "s3:AbortMultipartUpload", resource: objectArn });
      else if (has(query, "tagging"))
        out.push({
          action: versioned ? "s3:DeleteObjectVersionTagging" : "s3:DeleteObjectTagging",
          resource: objectArn,
        });
      else
        out.push({ action: versioned ? "s3:DeleteObjectVersion" : "s3:DeleteObject", resource: objectArn });
      return out;
    default:
      throw unmapped();
  }
}

const LIST_PARAMS = new Set([
  "list-type",
  "prefix",
  "delimiter",
  "max-keys",
  "continuation-token",
  "start-after",
  "marker",
  "encoding-type",
  "fetch-owner",
  "x-id",
]);

/** The access key id of a SigV4-signed request (header or presigned query), if any. */
export function accessKeyOf(
  headers: Record<string, string | string[] | undefined>,
  query: Record<string, string | string[] | undefined>,
): string | undefined {
  const auth = one(headers.authorization);
  const m = auth ? /Credential=([^/,\s]+)\//.exec(auth) : null;
  if (m) return m[1];
  const presigned = one(query["X-Amz-Credential"]);
  return presigned ? presigned.split("/")[0] : undefined;
}
