declare module "asl-validator" {
  const validator: (definition: unknown) => {
    isValid: boolean;
    errors: unknown[];
    errorsText: (separator?: string) => string;
  };
  export default validator;
}
